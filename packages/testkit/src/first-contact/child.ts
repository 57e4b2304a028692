import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PlugmqConfig } from '@plugmq/core';
import { coreAliases } from '../core-aliases.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface ChildRun {
  /** null when the child was killed for outliving `limitMs`. */
  readonly exitCode: number | null;
  readonly output: string;
  readonly elapsedMs: number;
}

/**
 * Runs, in a fresh `node` with nothing else alive, the first thing an application does:
 * `createQueueManager(config)`, printing `CONNECTED` or `FAILED <code>: <message>` (exit code 1).
 * A driver that neither settles nor keeps the process alive shows as exit 0 with no output.
 */
export async function connectInChild(
  child: { driverModule: string; coreEntry?: string },
  config: PlugmqConfig,
  limitMs: number,
): Promise<ChildRun> {
  const dir = await mkdtemp(join(tmpdir(), 'plugmq-first-contact-'));
  try {
    const entry = join(dir, 'entry.ts');
    await writeFile(
      entry,
      [
        `import { createQueueManager, registerDriver } from '@plugmq/core';`,
        `import { driver } from ${JSON.stringify(child.driverModule)};`,
        'registerDriver(driver);',
        'createQueueManager(JSON.parse(process.argv[2] ?? "{}")).then(',
        `  (manager) => { console.log('CONNECTED'); return manager.close(); },`,
        "  (error) => { console.log('FAILED ' + error?.code + ': ' + error?.message); process.exitCode = 1; },",
        ');',
      ].join('\n'),
    );
    const esbuild = (await import('esbuild' as string)) as {
      build(options: Record<string, unknown>): Promise<unknown>;
    };
    const script = join(dir, 'connect.cjs');
    await esbuild.build({
      entryPoints: [entry],
      outfile: script,
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      logLevel: 'error',
      nodePaths: [
        join(child.driverModule, '..', '..', 'node_modules'),
        join(here, '..', '..', 'node_modules'),
      ],
      ...(child.coreEntry ? { alias: coreAliases(child.coreEntry) } : {}),
    });
    const started = Date.now();
    return await new Promise<ChildRun>((resolve, reject) => {
      const proc = spawn(process.execPath, [script, JSON.stringify(config)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      proc.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      proc.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
      proc.on('error', reject);
      proc.on('close', (exitCode) => {
        clearTimeout(timer);
        resolve({ exitCode, output, elapsedMs: Date.now() - started });
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
