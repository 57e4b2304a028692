import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../conformance/helpers.js';
import { coreAliases } from '../core-aliases.js';
import type { ChildConsumerArgs, ChildReport } from './child-main.js';

export type { ChildConsumerArgs } from './child-main.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * Packages the child loads from node_modules instead of the bundle: @platformatic/kafka finds its
 * WebAssembly file relative to its own module URL, which a bundle does not keep.
 */
const UNBUNDLED = ['@platformatic/kafka'];

/** The child side: this package's source in the workspace, else the built module that exports it. */
function childMain(): string {
  const source = join(here, 'child-main.ts');
  return existsSync(source) ? source : fileURLToPath(import.meta.url);
}

/**
 * Bundles a consumer program for a driver into one CommonJS file plain `node` runs: the driver's
 * module (`driverModule`, a path to the adapter's source or build) and this package's child side,
 * with `@plugmq/core` resolved to `coreEntry` when given (the workspace's sources, so the child runs
 * the same code as the test). Needs `esbuild` (a dev dependency of the workspace); loaded only here.
 */
export async function bundleChildConsumer(driverModule: string, coreEntry?: string): Promise<ChildBundle> {
  // Inside the driver's node_modules where it has one, so that the packages left out of the
  // bundle (UNBUNDLED) resolve from the driver's dependencies at run time.
  const driverModules = join(driverModule, '..', '..', 'node_modules');
  const dir = await mkdtemp(
    join(existsSync(driverModules) ? driverModules : tmpdir(), '.plugmq-fault-child-'),
  );
  const entry = join(dir, 'entry.ts');
  await writeFile(
    entry,
    [
      `import { registerDriver } from '@plugmq/core';`,
      `import { driver } from ${JSON.stringify(driverModule)};`,
      `import { runChildConsumer } from ${JSON.stringify(childMain())};`,
      'registerDriver(driver);',
      'runChildConsumer().catch((error) => { console.error(error); process.exit(1); });',
    ].join('\n'),
  );
  const esbuild = (await import('esbuild' as string)) as {
    build(options: Record<string, unknown>): Promise<unknown>;
  };
  const outfile = join(dir, 'consumer.cjs');
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
    // The driver's own dependencies resolve from its package, wherever the temp dir is.
    nodePaths: [driverModules, join(here, '..', '..', 'node_modules')],
    external: UNBUNDLED,
    ...(coreEntry ? { alias: coreAliases(coreEntry) } : {}),
  });
  return { script: outfile, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface ChildBundle {
  readonly script: string;
  remove(): Promise<void>;
}

/** A consumer running in a child process, killable with SIGKILL. */
export class ChildConsumer {
  readonly started = new Set<string>();
  readonly done = new Set<string>();
  private ready = false;
  private exited = false;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (report: ChildReport) => {
      if ('ready' in report) this.ready = true;
      else if ('started' in report) this.started.add(report.started);
      else this.done.add(report.done);
    });
    child.once('exit', () => {
      this.exited = true;
    });
  }

  /** Forks the bundled consumer and resolves once its subscription is live (bounded wait). */
  static async start(
    bundle: ChildBundle,
    args: ChildConsumerArgs,
    timeoutMs = 60_000,
  ): Promise<ChildConsumer> {
    const child = fork(bundle.script, [JSON.stringify(args)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const consumer = new ChildConsumer(child);
    try {
      await waitFor(() => consumer.ready || consumer.exited, timeoutMs, 'the child consumer to be live');
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    if (!consumer.ready) throw new Error(`the child consumer exited with ${String(child.exitCode)}`);
    return consumer;
  }

  /** SIGKILL: no close(), no acks, no goodbye to the broker. Resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await gone;
  }

  /** Ids the child started and never finished: what another consumer must still get. */
  unfinished(): string[] {
    return [...this.started].filter((id) => !this.done.has(id));
  }
}
