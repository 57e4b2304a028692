import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { topologyFor, waitQueueName, waitWindow } from '../../src/topology.js';

/** The delays the fault suite's scenario 1b uses (200 + (index % 7) × 100 ms). */
const SUITE_DELAYS = [200, 300, 400, 500, 600, 700, 800];

/**
 * For a fault scenario that lost messages: what the delay wait queues of `exchange` still hold
 * (messages the broker never dead-lettered back stay there), and the broker's own warnings about
 * dead-lettering, from the log of the testkit's local broker on that port (if it is one).
 */
export async function inspectLostOnRabbit(url: string, exchange: string): Promise<string> {
  const parts: string[] = [];
  const topology = topologyFor(exchange);
  const now = waitWindow();
  // The scenario ran within the last minutes: its wait queues are of this window or the last.
  const windows = [now - 1, now];
  const connection = await amqp.connect(url);
  try {
    for (const window of windows) {
      for (const ms of SUITE_DELAYS) {
        const name = waitQueueName(topology, 'delay', ms, window);
        const channel = await connection.createChannel();
        channel.on('error', () => {});
        const found = await channel.checkQueue(name).catch(() => undefined);
        if (found) parts.push(`${name}: ${found.messageCount} ready, ${found.consumerCount} consumers`);
        await channel.close().catch(() => {});
      }
    }
  } finally {
    await connection.close().catch(() => {});
  }
  const port = new URL(url).port;
  for (const dir of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!dir.startsWith('plugmq-rabbitmq-')) continue;
    const log = await readFile(join(tmpdir(), dir, 'rabbitmq.log'), 'utf8').catch(() => '');
    if (!log.includes(`127.0.0.1:${port}`)) continue;
    const lines = log.split('\n').filter((line) => /dead.letter|dlx|\[error\]|\[warning\]/i.test(line));
    parts.push(`broker log (${dir}): ${lines.slice(-12).join(' | ') || 'no dead-letter warning'}`);
  }
  return parts.join('; ');
}
