import { createDashboard } from '@plugmq/dashboard';
import type { Command } from 'commander';
import { type ConnectionOptions, connect, untilSignal } from '../connect.js';
import { port } from '../parse.js';

interface DashboardFlags extends ConnectionOptions {
  port: number;
  host: string;
  dlq?: string[];
  readOnly?: boolean;
}

export function dashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description(
      'Serve the dashboard for the configured broker: browse and replay dead letters, /metrics. Live rates cover this process only; mount @plugmq/dashboard in your application to see its traffic.',
    )
    .option('-p, --port <port>', 'port to listen on', port, 4545)
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--dlq <types...>', 'dead-letter types to read, e.g. orders.created.dlq')
    .option('--read-only', 'refuse replays')
    .action(async (_flags: DashboardFlags, command: Command) => {
      const flags = command.optsWithGlobals<DashboardFlags>();
      const queue = await connect(flags);
      const dashboard = await createDashboard({
        queue,
        ...(flags.dlq ? { deadLetterTypes: flags.dlq } : {}),
        ...(flags.readOnly ? { readOnly: true } : {}),
      });
      const { url } = await dashboard.listen(flags.port, flags.host);
      process.stderr.write(`dashboard for ${queue.driver}: ${url} (Ctrl-C to stop)\n`);
      await untilSignal();
      await dashboard.close();
      await queue.close();
    });
}
