import { createQueueManager, type Message, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, deferred, startBroker, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver, groupKeys, typeKeys } from '../src/index.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
let raw: Redis;
const managers: QueueManager[] = [];
const keyPrefix = `plugmq-priority-${process.pid}`;

beforeAll(async () => {
  broker = await startBroker('redis');
  raw = new Redis(broker.url);
}, 180_000);
afterAll(async () => {
  await Promise.all(managers.map((manager) => manager.close()));
  raw?.disconnect();
  await broker?.stop();
});

async function manager(overrides: Record<string, unknown> = {}): Promise<QueueManager> {
  const created = await createQueueManager({ driver: 'redis', url: broker?.url, keyPrefix, ...overrides });
  managers.push(created);
  return created;
}

/** XINFO STREAM's `entries-added` (Redis 7): how many entries a stream ever got. */
async function entriesAdded(key: string): Promise<number> {
  if ((await raw.exists(key)) === 0) return 0;
  const flat = (await raw.xinfo('STREAM', key)) as unknown[];
  return Number(flat[flat.indexOf('entries-added') + 1]);
}

test('a dead consumer’s pending entries on every level are claimed by another consumer', async () => {
  const type = uniqueType('claim');
  const group = uniqueGroup('claim');
  // The group exists (on the type's stream) before the prioritised publishes.
  const first = await manager();
  await first.consume(type, async () => {}, { group });
  await first.close();

  const producer = await manager();
  for (const priority of [undefined, 3, 7, 9]) {
    await producer.publish(type, `p${priority ?? 0}`, priority === undefined ? {} : { priority });
  }
  // A consumer that reads every level and dies: its entries stay pending on it.
  for (const level of [0, 3, 7, 9]) {
    const read = (await raw.xreadgroup(
      'GROUP',
      group,
      'dead',
      'COUNT',
      10,
      'STREAMS',
      typeKeys(keyPrefix, type, level).stream,
      '>',
    )) as [string, unknown[]][] | null;
    expect(read?.[0]?.[1]).toHaveLength(1);
  }

  const got: Message<string>[] = [];
  const survivor = await manager({ claimMinIdleMs: 300, claimIntervalMs: 100 });
  await survivor.consume<string>(type, async (message) => void got.push(message), { group });
  await waitFor(() => got.length === 4, 10_000, 'the dead consumer’s 4 entries');
  expect(got.map((message) => message.body).sort()).toEqual(['p0', 'p3', 'p7', 'p9']);
  expect(got.every((message) => message.attempt === 2)).toBe(true);
  await waitFor(
    async () => {
      const now = (await survivor.inspect({ types: [type] })).groups.find((g) => g.group === group);
      return now?.inFlight === 0 && now.backlog === 0;
    },
    5_000,
    'nothing left pending',
  );
});

test('a retried prioritised message comes back on its level', async () => {
  const queue = await manager();
  const type = uniqueType('retry');
  const group = uniqueGroup('retry');
  const got: Message<string>[] = [];
  await queue.consume<string>(
    type,
    async (message) => {
      got.push(message);
      if (message.attempt === 1) throw new Error('once');
    },
    { group, retry: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 50 } },
  );
  await queue.publish(type, 'seven', { priority: 7 });
  await waitFor(() => got.length === 2, 10_000, 'the retry');
  expect(got.map((message) => message.attempt)).toEqual([1, 2]);
  expect(await entriesAdded(groupKeys(keyPrefix, type, group, 7).retry)).toBe(1);
  expect(await entriesAdded(groupKeys(keyPrefix, type, group).retry)).toBe(0);
});

test('inspect() counts the backlog of every level; peek() sees them', async () => {
  const type = uniqueType('inspect');
  const group = uniqueGroup('inspect');
  const first = await manager();
  await first.consume(type, async () => {}, { group });
  await first.close();
  const queue = await manager();
  await queue.publish(type, 'a');
  await queue.publish(type, 'b', { priority: 0 });
  await queue.publishBatch([
    { type, body: 'c', options: { priority: 5 } },
    { type, body: 'd', options: { priority: 5 } },
    { type, body: 'e', options: { priority: 9 } },
    { type, body: 'f' },
  ]);
  const state = (await queue.inspect({ types: [type] })).groups.find((g) => g.group === group);
  expect(state).toMatchObject({ type, group, backlog: 6, inFlight: 0 });
  expect(await raw.xlen(typeKeys(keyPrefix, type, 5).stream)).toBe(2);
  expect(await raw.xlen(typeKeys(keyPrefix, type).stream)).toBe(3);

  // A consumer that comes back reads the waiting ones highest level first.
  const got: string[] = [];
  const gate = deferred();
  const consumer = await manager();
  await consumer.consume<string>(
    type,
    async (message) => {
      got.push(message.body);
      await gate.promise;
    },
    { group, concurrency: 1 },
  );
  await waitFor(() => got.length === 1, 5_000, 'the first delivery');
  gate.resolve();
  await waitFor(() => got.length === 6, 5_000, 'all six');
  expect(got).toEqual(['e', 'c', 'd', 'a', 'b', 'f']);
});

test('a delayed prioritised publish is delivered on its level; mandatory checks the type’s groups', async () => {
  const queue = await manager();
  const type = uniqueType('delay');
  const group = uniqueGroup('delay');
  await expect(queue.publish(type, 'nobody', { priority: 4, mandatory: true })).rejects.toMatchObject({
    code: 'PUBLISH_FAILED',
  });
  const got: Message<string>[] = [];
  await queue.consume<string>(type, async (message) => void got.push(message), { group });
  const at = Date.now();
  await queue.publish(type, 'later', { priority: 4, delayMs: 150 });
  await queue.publish(type, 'now', { priority: 4, mandatory: true });
  await waitFor(() => got.length === 2, 5_000, 'both');
  expect(got.map((message) => message.body)).toEqual(['now', 'later']);
  expect(Date.now() - at).toBeGreaterThanOrEqual(140);
  expect(await raw.zcard(typeKeys(keyPrefix, type, 4).delay.schedule)).toBe(0);
});
