import { applyMiddleware, createQueueManager, registerDriver, withIdempotency } from '@plugmq/core';
import {
  type BrokerHandle,
  expectPlugmqError,
  sleep,
  startBroker,
  uniqueGroup,
  uniqueName,
  uniqueType,
  waitFor,
} from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver, RedisIdempotencyStore } from '../src/index.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
let client: Redis;
beforeAll(async () => {
  broker = await startBroker('redis');
  client = new Redis(broker.url);
}, 180_000);
afterAll(async () => {
  client?.disconnect();
  await broker?.stop();
});

test('claim, release and complete: one owner at a time, release only by the owner, done is remembered', async () => {
  const store = new RedisIdempotencyStore({ client });
  const key = uniqueName('idem');
  expect(await store.claim(key, 'run-a', 10_000)).toBe('claimed');
  expect(await store.claim(key, 'run-b', 10_000)).toBe('running');
  await store.release(key, 'run-b');
  expect(await store.claim(key, 'run-c', 10_000), 'a stranger cannot release the claim').toBe('running');
  await store.release(key, 'run-a');
  expect(await store.claim(key, 'run-d', 10_000)).toBe('claimed');
  await store.complete(key, 10_000);
  expect(await store.claim(key, 'run-e', 10_000)).toBe('done');
  await store.release(key, 'run-d');
  expect(await store.claim(key, 'run-f', 10_000), 'release after complete keeps done').toBe('done');
  expect(await client.get(`plugmq:idempotency:${key}`)).toBe('done');
});

test('claims and handled ids expire (PX): lockTtlMs and ttlMs', async () => {
  const store = new RedisIdempotencyStore({ client, prefix: 'test-idem:' });
  const key = uniqueName('idem');
  expect(await store.claim(key, 'a', 100)).toBe('claimed');
  expect(await client.pttl(`test-idem:${key}`)).toBeGreaterThan(0);
  await sleep(200);
  expect(await store.claim(key, 'b', 10_000), 'an expired claim can be taken').toBe('claimed');
  await store.complete(key, 100);
  expect(await store.claim(key, 'c', 10_000)).toBe('done');
  await sleep(200);
  expect(await store.claim(key, 'd', 10_000), 'a handled id is forgotten after ttlMs').toBe('claimed');
});

test('50 claims of one key at once: exactly one wins', async () => {
  const clients = Array.from({ length: 5 }, () => new Redis(broker?.url as string));
  try {
    const stores = clients.map((c) => new RedisIdempotencyStore({ client: c }));
    const key = uniqueName('idem');
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => stores[i % stores.length]?.claim(key, `t-${i}`, 10_000)),
    );
    expect(results.filter((result) => result === 'claimed')).toHaveLength(1);
    expect(results.filter((result) => result === 'running')).toHaveLength(49);
  } finally {
    for (const c of clients) c.disconnect();
  }
});

test('two consumers of one group, each with its own client: 40 copies of 10 ids run the side effect 10 times', async () => {
  const url = broker?.url as string;
  const type = uniqueType('idem');
  const group = uniqueGroup('idem');
  const effects: string[] = [];
  const managers = await Promise.all([1, 2].map(() => createQueueManager({ driver: 'redis', url })));
  const clients = [new Redis(url), new Redis(url)];
  try {
    for (const [index, manager] of managers.entries()) {
      const store = new RedisIdempotencyStore({ client: clients[index] as Redis });
      const handler = applyMiddleware(async (message) => {
        await sleep(5);
        effects.push(message.id);
      }, withIdempotency({ store, group }));
      await manager.consume(type, handler, { group, concurrency: 4 });
    }
    const publisher = managers[0];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => publisher?.publish(type, i, { id: `id-${i % 10}` })),
    );
    await waitFor(() => effects.length >= 10, 20_000, '10 side effects');
    await sleep(500);
    expect(effects.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `id-${i}`).sort());
  } finally {
    await Promise.all(managers.map((manager) => manager.close()));
    for (const c of clients) c.disconnect();
  }
});

test('a client that is not an ioredis instance is INVALID_ARGUMENT', async () => {
  await expectPlugmqError(
    () => new RedisIdempotencyStore({ client: {} as unknown as Redis }),
    'INVALID_ARGUMENT',
    'options.client',
  );
});
