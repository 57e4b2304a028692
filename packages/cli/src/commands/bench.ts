import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { intList, positiveInt } from '../parse.js';

// The same defaults as the workspace's scripts/bench.mjs.
const DEFAULT_MESSAGES: Record<string, number> = {
  memory: 200_000,
  rabbitmq: 20_000,
  redis: 50_000,
  kafka: 50_000,
  postgres: 5_000,
};

interface BenchFlags {
  driver?: string;
  messages?: number;
  concurrency: number[];
  rounds: number;
  json?: boolean;
  url?: string;
}

interface RunResult {
  msgsPerSec: number;
  /** This process's CPU time (user + system) per message, in µs. */
  cpuUsPerMsg: number;
  p50Ms: number;
  p99Ms: number;
}
interface BenchModule {
  run(options: {
    messages: number;
    concurrency: number;
    url?: string;
    onProgress?: (done: number) => void;
  }): Promise<{ adapter: RunResult; baseline: RunResult }>;
  /** Stops what the module started for itself (the postgres bench's server). */
  close?(): Promise<void>;
}

/** The workspace's per-driver bench module (packages/adapter-<driver>/bench/bench.mjs), looked for upwards. */
export function findBenchModule(
  driver: string,
  starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))],
) {
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      const candidate = join(dir, 'packages', `adapter-${driver}`, 'bench', 'bench.mjs');
      if (existsSync(candidate)) return candidate;
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;
const round2 = (value: number) => Math.round(value * 100) / 100;

export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      "Run the end-to-end benchmark of a driver beside its raw baseline (the workspace's pnpm bench), with a progress bar.",
    )
    .option(
      '--messages <n>',
      'messages per run (default: 200000 memory, 50000 redis and kafka, 20000 rabbitmq, 5000 postgres)',
      positiveInt('--messages'),
    )
    .option('--concurrency <list>', 'handler concurrency levels', intList('--concurrency'), [1, 16])
    .option(
      '--rounds <n>',
      'rounds per level, after a warm-up pass; the median-ratio round is reported',
      positiveInt('--rounds'),
      7,
    )
    .option('--url <url>', 'broker URL (default: PLUGMQ_<DRIVER>_URL)')
    .option('--json', 'print one JSON object per level instead of a table')
    .addHelpText(
      'after',
      '\nThe driver is the global --driver (memory, rabbitmq, redis, kafka or postgres; default memory).',
    )
    .action(async (_flags: BenchFlags, command: Command) => {
      const flags = command.optsWithGlobals<BenchFlags>();
      flags.driver ??= 'memory';
      if (!(flags.driver in DEFAULT_MESSAGES)) {
        command.error(
          `error: --driver must be one of ${Object.keys(DEFAULT_MESSAGES).join(', ')} (got ${flags.driver})`,
          {
            exitCode: 2,
          },
        );
      }
      const path = findBenchModule(flags.driver);
      if (!path) {
        throw new Error(
          `no benchmark for ${flags.driver}: bench needs the PlugMQ workspace (packages/adapter-${flags.driver}/bench/bench.mjs); run it from the repository`,
        );
      }
      const bench = (await import(pathToFileURL(path).href)) as BenchModule;
      const messages = flags.messages ?? DEFAULT_MESSAGES[flags.driver] ?? 20_000;
      const url = flags.url ?? process.env[`PLUGMQ_${flags.driver.toUpperCase()}_URL`];
      const rows = [];
      for (const concurrency of flags.concurrency) {
        // Each round runs the baseline and the driver (after a warm-up pass): 2 × rounds passes of `messages`.
        const bar = new SingleBar({
          format: `${flags.driver} c=${concurrency} [{bar}] {percentage}% | {value}/{total} msgs | round {round}/${flags.rounds}`,
          stream: process.stderr,
          noTTYOutput: true,
          notTTYSchedule: 2000,
          hideCursor: true,
        });
        const total = messages * 2 * flags.rounds;
        bar.start(total, 0, { round: 1 });
        let passBase = 0;
        let lastDone = 0;
        const results = [];
        for (let round = 0; round < flags.rounds; round++) {
          bar.update({ round: round + 1 });
          const onProgress = (done: number) => {
            if (done < lastDone) passBase += messages; // the next pass started
            lastDone = done;
            bar.update(Math.min(total, passBase + done));
          };
          results.push(await bench.run({ messages, concurrency, ...(url ? { url } : {}), onProgress }));
          passBase = (round + 1) * 2 * messages;
          lastDone = 0;
          bar.update(passBase);
        }
        bar.stop();
        results.sort(
          (a, b) =>
            a.adapter.msgsPerSec / a.baseline.msgsPerSec - b.adapter.msgsPerSec / b.baseline.msgsPerSec,
        );
        const median = results[Math.floor(results.length / 2)];
        if (!median) continue;
        const row = {
          driver: flags.driver,
          scenario: `concurrency-${concurrency}`,
          messages,
          rounds: flags.rounds,
          // CPU per message first, as in pnpm bench: steadier than msgs/s on a shared machine.
          cpuUsPerMsg: round2(median.adapter.cpuUsPerMsg),
          baselineCpuUsPerMsg: round2(median.baseline.cpuUsPerMsg),
          cpuRatio: round3(median.adapter.cpuUsPerMsg / median.baseline.cpuUsPerMsg),
          msgsPerSec: Math.round(median.adapter.msgsPerSec),
          baselineMsgsPerSec: Math.round(median.baseline.msgsPerSec),
          ratio: round3(median.adapter.msgsPerSec / median.baseline.msgsPerSec),
          p50Ms: median.adapter.p50Ms,
          p99Ms: median.adapter.p99Ms,
        };
        rows.push(row);
        if (flags.json) process.stdout.write(`${JSON.stringify(row)}\n`);
      }
      await bench.close?.();
      if (!flags.json) console.table(rows);
    });
}
