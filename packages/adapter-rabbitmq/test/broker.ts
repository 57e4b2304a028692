import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as testkit from '@plugmq/testkit';

const run = promisify(execFile);

/** What the RabbitMQ tests need of a broker: where it is, and a way to restart it keeping its data. */
export interface RabbitBroker {
  readonly url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

type StartBroker = (kind: 'rabbitmq') => Promise<RabbitBroker>;

/**
 * The broker for this package's tests: testkit's `startBroker('rabbitmq')` (env URL → container →
 * local process) once testkit exports it; until then `PLUGMQ_RABBITMQ_URL` (default the local
 * broker), restarted with `rabbitmqctl stop_app/start_app` on this machine.
 */
export async function rabbitBroker(): Promise<RabbitBroker> {
  const start = (testkit as unknown as { startBroker?: StartBroker }).startBroker;
  if (typeof start === 'function') return start('rabbitmq');
  const url = process.env.PLUGMQ_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  return {
    url,
    async restart() {
      await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
      await run('rabbitmqctl', ['start_app'], { timeout: 60_000 });
      await run('rabbitmqctl', ['await_startup', '--timeout', '60'], { timeout: 70_000 });
    },
    async stop() {},
  };
}
