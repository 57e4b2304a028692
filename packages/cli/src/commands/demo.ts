import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createDashboard } from '@plugmq/dashboard';
import type { Command } from 'commander';
import { type ConnectionOptions, connect, untilSignal } from '../connect.js';
import { startDemoWorkload } from '../demo-workload.js';
import { port, positiveInt } from '../parse.js';

interface DemoFlags extends ConnectionOptions {
  dashboard?: number;
  host: string;
  rate: number;
  duration?: number;
  once?: boolean;
}

function findDemoScript(): string | undefined {
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    const candidate = join(dir, 'scripts', 'demo.mjs');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'Run the demo workload continuously (orders, payments that fail and dead-letter, notices); with --dashboard, serve the live dashboard too.',
    )
    .option('--dashboard <port>', 'serve the dashboard on this port (0 picks a free one)', port)
    .option('--host <host>', 'dashboard listen address', '127.0.0.1')
    .option('--rate <n>', 'messages published per second', positiveInt('--rate'), 40)
    .option(
      '--duration <s>',
      'stop after this many seconds (default: until Ctrl-C)',
      positiveInt('--duration'),
    )
    .option('--once', "run the step-by-step demo script once instead (the workspace's pnpm demo)")
    .addHelpText(
      'after',
      '\nExample:\n  pnpm plugmq demo --dashboard 4545   # then open http://127.0.0.1:4545/',
    )
    .action(async (_flags: DemoFlags, command: Command) => {
      const flags = command.optsWithGlobals<DemoFlags>();
      if (flags.once) {
        const script = findDemoScript();
        if (!script)
          throw new Error('--once needs the PlugMQ workspace (scripts/demo.mjs); run it from the repository');
        const env = {
          ...process.env,
          ...(flags.driver ? { PLUGMQ_DRIVER: flags.driver } : {}),
          ...(flags.url ? { PLUGMQ_URL: flags.url } : {}),
        };
        const child = spawn(process.execPath, [script], { stdio: 'inherit', env });
        const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
        if (code !== 0) process.exitCode = code;
        return;
      }
      const queue = await connect(flags);
      // The dashboard first, so it sees the consumers start and reads their dead-letter types.
      const dashboard = flags.dashboard === undefined ? undefined : await createDashboard({ queue });
      const workload = await startDemoWorkload(queue, { rate: flags.rate });
      if (dashboard) {
        const { url } = await dashboard.listen(flags.dashboard as number, flags.host);
        process.stderr.write(`dashboard: ${url}  metrics: ${url}metrics\n`);
      }
      process.stderr.write(`demo on ${queue.driver} at ${flags.rate} msg/s (Ctrl-C to stop)\n`);
      const started = Date.now();
      const report = setInterval(() => {
        const seconds = Math.round((Date.now() - started) / 1000);
        const totals = dashboard?.stats.totals();
        process.stderr.write(
          `${seconds}s published ${workload.published()}${totals ? ` handled ${totals.acked + totals.failed} dead-lettered ${totals.deadLettered}` : ''}\n`,
        );
      }, 5000);
      const ended = flags.duration
        ? new Promise((resolve) => setTimeout(resolve, (flags.duration as number) * 1000))
        : new Promise(() => {});
      await Promise.race([ended, untilSignal()]);
      clearInterval(report);
      await workload.stop();
      await dashboard?.close();
      await queue.close();
      process.stderr.write(`demo stopped after publishing ${workload.published()} messages\n`);
    });
}
