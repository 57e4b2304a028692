import { driver as redisDriver } from '@plugmq/adapter-redis';
import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, startBroker, uniqueType, waitFor } from '@plugmq/testkit';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { runCli } from '../src/index.js';

registerDriver(redisDriver);

let broker: BrokerHandle | undefined;
let app: QueueManager | undefined;
const keyPrefix = `plugmq-cli-inspect-${process.pid}`;
beforeAll(async () => {
  broker = await startBroker('redis');
}, 180_000);
afterAll(async () => {
  vi.unstubAllEnvs();
  await app?.close();
  await broker?.stop();
});

async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk);
    return true;
  });
  try {
    const code = await runCli(['--driver', 'redis', '--url', broker?.url ?? '', ...argv]);
    return { code, out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

it('another process sees the application’s backlog and consumers, and lists and replays its dead letters at rest (redis)', async () => {
  // The CLI's manager is a second connection, as `plugmq` in a shell would be.
  vi.stubEnv('PLUGMQ_KEY_PREFIX', keyPrefix);
  app = await createQueueManager({ driver: 'redis', url: broker?.url, keyPrefix });
  const type = uniqueType('cli-inspect');
  let fixed = false;
  const handled: unknown[] = [];
  await app.consume(
    type,
    (message) => {
      if (!fixed) throw new Error('card declined');
      handled.push(message.body);
    },
    { group: 'billing', retry: { maxAttempts: 1 } },
  );
  const queue = app;
  await queue.publish(type, { n: 1 });
  await waitFor(
    async () => (await queue.deadLetters.browse(`${type}.dlq`)).length === 1,
    10_000,
    'the dead letter at rest',
  );

  const inspected = await cli('inspect', type, `${type}.dlq`, '--json');
  expect(inspected.code, inspected.err).toBe(0);
  const inspection = JSON.parse(inspected.out);
  expect(inspection.driver).toBe('redis');
  expect(inspection.groups).toContainEqual(
    expect.objectContaining({ type, group: 'billing', backlog: 0, consumers: 1 }),
  );
  expect(inspection.deadLetters).toContainEqual(expect.objectContaining({ type: `${type}.dlq`, count: 1 }));

  const listed = await cli('dlq', 'list', `${type}.dlq`, '--json');
  expect(listed.code, listed.err).toBe(0);
  expect(JSON.parse(listed.out.trim())).toMatchObject({
    originalType: type,
    error: 'Error: card declined',
    body: { n: 1 },
  });

  fixed = true;
  const replayed = await cli('dlq', 'replay', `${type}.dlq`);
  expect(replayed.code, replayed.err).toBe(0);
  expect(replayed.out).toContain(`replayed 1 from ${type}.dlq`);
  await waitFor(() => handled.length === 1, 10_000, 'the dead letter at rest');
  const after = JSON.parse((await cli('inspect', `${type}.dlq`, '--json')).out);
  expect(after.deadLetters).toContainEqual(expect.objectContaining({ type: `${type}.dlq`, count: 0 }));
}, 60_000);
