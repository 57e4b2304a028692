import { createQueueManager, type Message, type QueueManager, registerDriver } from '@plugmq/core';
import { partitionOfKey } from '@plugmq/core/driver';
import {
  type BrokerHandle,
  captureLogger,
  startBroker,
  uniqueGroup,
  uniqueType,
  waitFor,
} from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { capabilitiesFor, driver, typeKeys } from '../src/index.js';
import { validateRedisConfig } from '../src/options.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
let raw: Redis;
const managers: QueueManager[] = [];
const keyPrefix = `plugmq-partitions-${process.pid}`;
const PARTITIONS = 4;
const LEASE_MS = 1_500;

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
  const created = await createQueueManager({
    driver: 'redis',
    url: broker?.url,
    keyPrefix,
    partitions: PARTITIONS,
    leaseMs: LEASE_MS,
    ...overrides,
  });
  managers.push(created);
  return created;
}

/** Which partitions of (type, group) each consumer name holds now. */
async function leaseHolders(type: string, group: string): Promise<(string | null)[]> {
  const keys = Array.from({ length: PARTITIONS }, (_, p) => `${keyPrefix}:{${type}}:lease:${group}:${p}`);
  return raw.mget(...keys);
}

describe('options', () => {
  test.each([
    [{ partitions: -1 }, 'partitions'],
    [{ partitions: 1.5 }, 'partitions'],
    [{ partitions: 257 }, 'partitions'],
    [{ partitions: '4' }, 'partitions'],
    [{ leaseMs: 0 }, 'leaseMs'],
    [{ leaseMs: 'x' }, 'leaseMs'],
  ])('%o is CONFIG_INVALID naming %s', (options, name) => {
    let error: { code?: string; message?: string } | undefined;
    try {
      validateRedisConfig({ driver: 'redis', ...options });
    } catch (caught) {
      error = caught as typeof error;
    }
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.message).toContain(name);
  });

  test('defaults: off, leaseMs 10 000; orderedByKey only with partitions', () => {
    const config = validateRedisConfig({ driver: 'redis' });
    expect(config.partitions).toBe(0);
    expect(config.leaseMs).toBe(10_000);
    expect(capabilitiesFor(config).orderedByKey).toBe(false);
    expect(capabilitiesFor({ partitions: 4 }).orderedByKey).toBe(true);
  });
});

test('key + priority is refused with UNSUPPORTED; priority without a key still works', async () => {
  const producer = await manager();
  const type = uniqueType('keyprio');
  await expect(producer.publish(type, 1, { key: 'a', priority: 5 })).rejects.toMatchObject({
    code: 'UNSUPPORTED',
    message: expect.stringContaining('partitions'),
  });
  await producer.publish(type, 2, { priority: 5 });
  expect(await raw.xlen(typeKeys(keyPrefix, type, 5).stream)).toBe(1);
});

test('a keyed message is written to its partition stream, an unkeyed one to the type stream', async () => {
  const producer = await manager();
  const type = uniqueType('route');
  const group = uniqueGroup('route');
  const got: Message<string>[] = [];
  await producer.consume<string>(type, async (message) => void got.push(message), { group });
  await producer.publish(type, 'keyed', { key: 'order-42' });
  await producer.publish(type, 'plain');
  await producer.publish(type, 'later', { key: 'order-42', delayMs: 300 });
  const partition = partitionOfKey('order-42', PARTITIONS);
  expect(await raw.xlen(typeKeys(keyPrefix, type, 0, partition).stream)).toBe(1);
  expect(await raw.xlen(typeKeys(keyPrefix, type).stream)).toBe(1);
  expect(await raw.zcard(typeKeys(keyPrefix, type, 0, partition).delay.schedule)).toBe(1);
  await waitFor(() => got.length === 3, 10_000, 'three deliveries');
  expect(got.map((message) => message.body).sort()).toEqual(['keyed', 'later', 'plain']);
  expect(await raw.xlen(typeKeys(keyPrefix, type, 0, partition).stream)).toBe(2);
  // inspect folds the partition streams into the type's figures.
  await producer.publish(type, 'waiting', { key: 'other' });
  const before = await producer.inspect({ types: [type] });
  expect(before.groups.find((state) => state.group === group)).toBeDefined();
});

test('inspect counts the backlog of partition streams', async () => {
  const producer = await manager();
  const type = uniqueType('inspect');
  const group = uniqueGroup('inspect');
  const sub = await producer.consume(type, async () => {}, { group });
  await sub.close();
  for (let i = 0; i < 8; i++) await producer.publish(type, i, { key: `k${i}` });
  await producer.publish(type, 'plain');
  const state = (await producer.inspect({ types: [type] })).groups.find((g) => g.group === group);
  expect(state?.backlog).toBe(9);
});

interface Seen {
  readonly key: string;
  readonly seq: number;
  readonly by: string;
  readonly attempt: number;
}

test('two subscriptions split the partitions 2/2, each key is handled by one at a time in order, and a closing one hands its partitions over', async () => {
  const type = uniqueType('split');
  const group = uniqueGroup('split');
  const logger = captureLogger();
  const a = await manager({ logger });
  const b = await manager({ logger });
  const producer = await manager();
  const seen: Seen[] = [];
  const running = new Map<string, string>();
  const overlaps: string[] = [];
  const handler = (by: string) => async (message: Message<{ key: string; seq: number }>) => {
    const { key, seq } = message.body;
    const other = running.get(key);
    if (other !== undefined) overlaps.push(`${key}: ${by} while ${other}`);
    running.set(key, by);
    seen.push({ key, seq, by, attempt: message.attempt });
    await new Promise((resolve) => setTimeout(resolve, 2));
    running.delete(key);
  };
  const subA = await a.consume(type, handler('a'), { group, concurrency: 8 });
  await b.consume(type, handler('b'), { group, concurrency: 8 });
  // Within a few lease rounds (leaseMs / 3 each) the partitions are 2/2.
  await waitFor(
    async () => {
      const holders = await leaseHolders(type, group);
      const counts = new Map<string | null, number>();
      for (const holder of holders) counts.set(holder, (counts.get(holder) ?? 0) + 1);
      return !counts.has(null) && counts.size === 2 && [...counts.values()].every((n) => n === 2);
    },
    LEASE_MS * 6,
    'the partitions to split 2/2',
  );
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
  const total = 600;
  for (let seq = 0; seq < total; seq++) {
    const key = keys[seq % keys.length] as string;
    await producer.publish(type, { key, seq }, { key });
    // Half-way, one subscription closes: its partitions go to the other.
    if (seq === total / 2) await subA.close();
  }
  await waitFor(() => new Set(seen.map((s) => s.seq)).size === total, 30_000, 'every message');
  expect(overlaps).toEqual([]);
  for (const key of keys) {
    const order = [...new Set(seen.filter((s) => s.key === key).map((s) => s.seq))];
    expect(order, `order of ${key}`).toEqual([...order].sort((x, y) => x - y));
  }
  expect(new Set(seen.map((s) => s.by))).toEqual(new Set(['a', 'b']));
  // Handed over at close, unstarted entries stay pending and keep their attempt (no retry here).
  expect(seen.filter((s) => s.attempt !== 1)).toEqual([]);
  expect(seen.length, 'every message handled once').toBe(total);
  const holders = await leaseHolders(type, group);
  expect(new Set(holders).size).toBe(1);
  expect(holders[0]).not.toBeNull();
  // Joining, balancing and handing over are normal operation: nothing at warn or error.
  expect(logger.complaints()).toEqual([]);
});

test('closing under a backlog: its fetched, unstarted entries go to the next owner first, attempt unchanged, each key in order', async () => {
  const type = uniqueType('backlog');
  const group = uniqueGroup('backlog');
  const a = await manager();
  const b = await manager();
  const producer = await manager();
  const seen: Seen[] = [];
  const handler = (by: string) => async (message: Message<{ key: string; seq: number }>) => {
    const { key, seq } = message.body;
    seen.push({ key, seq, by, attempt: message.attempt });
    await new Promise((resolve) => setTimeout(resolve, 3));
  };
  const subA = await a.consume(type, handler('a'), { group, concurrency: 4 });
  const subB = await b.consume(type, handler('b'), { group, concurrency: 4 });
  await waitFor(
    async () => new Set(await leaseHolders(type, group)).size === 2,
    LEASE_MS * 6,
    'the partitions to split',
  );
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
  const total = 600;
  const publishes: Promise<string>[] = [];
  for (let seq = 0; seq < total; seq++) {
    const key = keys[seq % keys.length] as string;
    publishes.push(producer.publish(type, { key, seq }, { key }));
  }
  await Promise.all(publishes);
  await waitFor(() => seen.filter((s) => s.by === 'a').length >= 60, 20_000, 'a to be busy');
  // Closed while its partitions still hold a backlog and its prefetch holds unstarted entries.
  await subA.close();
  await waitFor(() => new Set(seen.map((s) => s.seq)).size === total, 30_000, 'every message');
  for (const key of keys) {
    const order = [...new Set(seen.filter((s) => s.key === key).map((s) => s.seq))];
    expect(order, `order of ${key}`).toEqual([...order].sort((x, y) => x - y));
  }
  expect(seen.filter((s) => s.attempt !== 1)).toEqual([]);
  expect(seen.length, 'every message handled once').toBe(total);
  expect(new Set(await leaseHolders(type, group)).size).toBe(1);
  await subB.close();
  // The last one out leaves no lease and no member behind, once its acks are confirmed.
  await waitFor(
    async () => (await leaseHolders(type, group)).every((holder) => holder === null),
    5_000,
    'the leases to be released',
  );
  expect(await raw.exists(`${keyPrefix}:{${type}}:members:${group}`)).toBe(0);
});

test('a normal life cycle logs nothing at warn; leases not renewed in time pause the partitions until a round succeeds', async () => {
  const logger = captureLogger();
  const type = uniqueType('lapse');
  const group = uniqueGroup('lapse');
  const consumer = await manager({ logger });
  const got: number[] = [];
  await consumer.consume<number>(type, async (message) => void got.push(message.body), { group });
  for (let i = 0; i < 20; i++) await consumer.publish(type, i, { key: `k${i % 4}` });
  await waitFor(() => got.length === 20, 10_000, 'the first 20');
  expect(logger.complaints()).toEqual([]);
  // Redis answers nobody for longer than a lease: the renewals cannot succeed in time.
  await raw.client('PAUSE', LEASE_MS + 700, 'ALL');
  await waitFor(
    () => logger.problems().some((entry) => entry.message.includes('partition leases could not be renewed')),
    LEASE_MS * 3,
    'the lapse warning',
  );
  // Back: a round succeeds (the leases are still ours or free again) and the partitions are read.
  for (let i = 20; i < 40; i++) await consumer.publish(type, i, { key: `k${i % 4}` });
  await waitFor(() => got.length === 40, 15_000, 'the next 20');
  for (let k = 0; k < 4; k++) {
    const order = got.filter((n) => n % 4 === k);
    expect(order).toEqual([...order].sort((x, y) => x - y));
  }
});

test("startFrom 'earliest': keyed messages published before the group existed reach it, each key in order", async () => {
  const producer = await manager();
  const type = uniqueType('earliest');
  for (let i = 0; i < 30; i++) await producer.publish(type, i, { key: `k${i % 3}` });
  const got: number[] = [];
  await producer.consume<number>(type, async (message) => void got.push(message.body), {
    group: uniqueGroup('earliest'),
    startFrom: 'earliest',
  });
  await waitFor(() => got.length === 30, 10_000, 'the 30 older messages');
  for (let k = 0; k < 3; k++) {
    const order = got.filter((n) => n % 3 === k);
    expect(order).toEqual([...order].sort((x, y) => x - y));
  }
});
