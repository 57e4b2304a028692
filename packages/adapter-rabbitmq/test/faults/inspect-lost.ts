import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * For a fault scenario that lost messages, what a local broker (the testkit's, found by its port)
 * says: the exchange's queues with their ready and unacknowledged messages and consumers (a wait
 * queue that never dead-lettered its messages back, a partition queue nobody consumes), the state
 * of the at-least-once dead-letter workers (one per wait queue: the messages each still waits on,
 * and for which target queues), and the broker log's warnings and errors.
 */
export async function inspectLostOnRabbit(url: string, exchange: string): Promise<string> {
  const port = new URL(url).port;
  const env = await brokerEnvironment(port);
  if (!env) return `no local broker process on port ${port} to inspect`;
  const parts: string[] = [];
  const queues = await rabbitmqctl(env, [
    'list_queues',
    '--no-table-headers',
    'name',
    'type',
    'messages_ready',
    'messages_unacknowledged',
    'consumers',
  ]);
  const ours = queues
    .split('\n')
    .filter((line) => line.startsWith(exchange))
    .map((line) => line.trim().replace(/\s+/g, ' '));
  parts.push(`queues (name type ready unacked consumers): ${ours.join(' | ')}`);
  const workers = await rabbitmqctl(env, [
    'eval',
    '[begin {status, _, _, [_, _, _, _, Misc]} = sys:get_status(P), Misc end || {_, P, _, _} <- supervisor:which_children(rabbit_fifo_dlx_sup)].',
  ]);
  parts.push(`dead-letter workers: ${workers.replace(/\s+/g, ' ').slice(0, 6_000)}`);
  for (const dir of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!dir.startsWith('plugmq-rabbitmq-')) continue;
    const log = await readFile(join(tmpdir(), dir, 'rabbitmq.log'), 'utf8').catch(() => '');
    if (!log.includes(`127.0.0.1:${port}`)) continue;
    const lines = log.split('\n').filter((line) => /dead.letter|dlx|\[error\]|\[warning\]/i.test(line));
    parts.push(`broker log (${dir}): ${lines.slice(-12).join(' | ') || 'no warning'}`);
  }
  return parts.join('; ');
}

/** The environment of the local broker process listening on `port` (its Erlang cookie, epmd). */
async function brokerEnvironment(port: string): Promise<Record<string, string> | undefined> {
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const raw = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (!raw.includes(`RABBITMQ_NODE_PORT=${port}\0`) || !raw.includes('RABBITMQ_NODENAME=')) continue;
    return Object.fromEntries(
      raw
        .split('\0')
        .filter((pair) => pair.includes('='))
        .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    );
  }
  return undefined;
}

function rabbitmqctl(env: Record<string, string>, args: string[]): Promise<string> {
  const node = env.RABBITMQ_NODENAME ?? '';
  return new Promise((resolve) => {
    execFile(
      '/usr/lib/rabbitmq/bin/rabbitmqctl',
      ['-n', node, '-q', ...args],
      { env, timeout: 30_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        resolve(error && !stdout ? `rabbitmqctl ${args[0]} failed: ${String(stderr).slice(0, 300)}` : stdout);
      },
    );
  });
}
