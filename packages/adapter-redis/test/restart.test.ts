import { createQueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, startBroker, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

const MESSAGES = 10_000;
/** Publishes in flight at once: a producer that does not wait for each reply. */
const WINDOW = 200;
const RESTART_AT = [2_000, 6_000];

// A broker this test owns (never the user's): Redis with AOF (appendfsync always), so what Redis
// acknowledged survives the restarts.
let broker: BrokerHandle;
beforeAll(async () => {
  broker = await startBroker('redis', { source: ['container', 'process'] });
}, 180_000);
afterAll(() => broker?.stop());

test('Redis (AOF) restarted twice during a 10 000-message stream: every resolved publish is delivered', async () => {
  const config = { driver: 'redis', url: broker.url, publishTimeoutMs: 120_000, keyPrefix: 'restart' };
  const consumer = await createQueueManager(config);
  const producer = await createQueueManager(config);
  const type = uniqueType('restart');
  const delivered = new Map<number, number>();
  await consumer.consume<number>(
    type,
    (message) => {
      delivered.set(message.body, (delivered.get(message.body) ?? 0) + 1);
    },
    { group: uniqueGroup('restart'), concurrency: 16 },
  );

  const resolved: number[] = [];
  const rejected: { n: number; code: string }[] = [];
  const restarts: Promise<void>[] = [];
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES) {
      const n = next++;
      if (RESTART_AT.includes(n)) restarts.push(broker.restart());
      try {
        await producer.publish(type, n);
        resolved.push(n);
      } catch (error) {
        rejected.push({ n, code: (error as { code?: string }).code ?? String(error) });
        if (rejected.length <= 3) console.log(String(error));
      }
      // Spread the stream over the restarts rather than finish before the first one bites.
      if (restarts.length > 0 && n % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: WINDOW }, worker));
  await Promise.all(restarts);
  await waitFor(
    () => resolved.every((n) => delivered.has(n)),
    120_000,
    'every resolved publish delivered',
  ).catch(() => {});
  const lost = resolved.filter((n) => !delivered.has(n));
  const duplicates = [...delivered.values()].reduce((sum, count) => sum + count - 1, 0);
  const health = await consumer.health();
  console.log(
    `redis restart fault test: ${MESSAGES} published in ${Date.now() - started} ms, ${resolved.length} resolved, ` +
      `${rejected.length} rejected (${[...new Set(rejected.map((r) => r.code))].join(', ') || 'none'}), ` +
      `${delivered.size} distinct delivered, ${lost.length} lost, ${duplicates} duplicates, ` +
      `consumer connects ${String(health.details?.connects)}`,
  );
  expect(restarts.length).toBe(2);
  expect(lost, 'resolved publishes never delivered').toEqual([]);
  expect(health.ok).toBe(true);
  await producer.close();
  await consumer.close();
}, 300_000);
