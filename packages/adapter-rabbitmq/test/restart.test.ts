import { createQueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, expectPlugmqError, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { ownedRabbitBroker } from './broker.js';

registerDriver(driver);

const MESSAGES = 10_000;
/** Publishes in flight at once: a producer that does not wait for each confirm. */
const WINDOW = 200;
const RESTART_AT = [2_000, 6_000];

let broker: BrokerHandle;
beforeAll(async () => {
  broker = await ownedRabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

test('broker restarted twice during a 10 000-message stream: every resolved publish is delivered', async () => {
  const exchange = `plugmq-restart-${process.pid}`;
  const config = {
    driver: 'rabbitmq',
    url: broker.url,
    exchange,
    publishTimeoutMs: 120_000,
    reconnectMaxDelayMs: 1_000,
  };
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
      if (RESTART_AT.includes(n)) {
        // One after the other: two distinct outages, even if the stream reaches the second mark fast.
        // And only once both managers are connected again, so each restart drops live connections.
        const previous = restarts.at(-1) ?? Promise.resolve();
        restarts.push(previous.then(() => bothConnected()).then(() => broker.restart()));
      }
      try {
        await producer.publish(type, n);
        resolved.push(n);
      } catch (error) {
        rejected.push({ n, code: (error as { code?: string }).code ?? String(error) });
      }
      // Let the stream spread over the restarts rather than finish before the first one bites.
      if (restarts.length > 0 && n % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const bothConnected = () =>
    waitFor(
      async () => (await consumer.health()).ok && (await producer.health()).ok,
      60_000,
      'producer and consumer connected',
    );
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
    `restart fault test: ${MESSAGES} published in ${Date.now() - started} ms, ${resolved.length} resolved, ` +
      `${rejected.length} rejected (${[...new Set(rejected.map((r) => r.code))].join(', ') || 'none'}), ` +
      `${delivered.size} distinct delivered, ${lost.length} lost, ${duplicates} duplicates, ` +
      `consumer connects ${String(health.details?.connects)}`,
  );
  expect(restarts.length).toBe(2);
  // Each restart dropped the consumer's connection: the first connect plus one per restart.
  expect(health.details?.connects).toBeGreaterThanOrEqual(3);
  expect(lost, 'resolved publishes never delivered').toEqual([]);
  expect(health.ok).toBe(true);
  await producer.close();
  await consumer.close();
}, 300_000);

test('while the broker is down: health is not ok, a publish waits at most publishTimeoutMs, then all resumes', async () => {
  const exchange = `plugmq-outage-${process.pid}`;
  const config = { driver: 'rabbitmq', url: broker.url, exchange, reconnectMaxDelayMs: 500 };
  const queue = await createQueueManager({ ...config, publishTimeoutMs: 800 });
  const patient = await createQueueManager({ ...config, publishTimeoutMs: 60_000 });
  const type = uniqueType('outage');
  const got: string[] = [];
  await queue.consume<string>(type, (message) => void got.push(message.body), {
    group: uniqueGroup('outage'),
  });
  try {
    await broker.kill();
    await waitFor(async () => !(await queue.health()).ok, 10_000, 'health to report the outage');
    const started = Date.now();
    await expectPlugmqError(() => queue.publish(type, 'lost-wait'), 'PUBLISH_FAILED');
    expect(Date.now() - started).toBeLessThan(5_000);
    // A publish made during the outage with a deadline that outlives it is sent once the broker is back.
    const waiting = patient.publish(type, 'sent-after');
    waiting.catch(() => {});
    await broker.restart();
    await waiting;
    await waitFor(() => got.includes('sent-after'), 30_000, 'the subscription to resume');
    expect((await queue.health()).ok).toBe(true);
  } finally {
    await queue.close();
    await patient.close();
  }
}, 120_000);
