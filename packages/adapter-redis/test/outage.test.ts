import { createQueueManager, type PlugmqError, registerDriver } from '@plugmq/core';
import { type BrokerHandle, startBroker, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

// Kills and restarts Redis: only on a broker this test owns (AOF on: data survives the kill).
let broker: BrokerHandle;
beforeAll(async () => {
  broker = await startBroker('redis', { source: ['container', 'process'] });
}, 180_000);
afterAll(() => broker?.stop());

test('while Redis is down a publish waits: it rejects PUBLISH_FAILED at its deadline, or resolves once Redis is back', async () => {
  const manager = await createQueueManager({ driver: 'redis', url: broker.url, publishTimeoutMs: 1_000 });
  const type = uniqueType('outage');
  const got: string[] = [];
  await manager.consume<string>(type, (message) => void got.push(message.body), { group: uniqueGroup() });
  await broker.kill();

  const started = Date.now();
  const error = await manager.publish(type, 'times out').then(
    () => undefined,
    (caught: PlugmqError) => caught,
  );
  expect(error?.code).toBe('PUBLISH_FAILED');
  expect(Date.now() - started).toBeGreaterThanOrEqual(900);

  // A publish with a longer deadline (its own signal) rides out the outage.
  const waiting = manager
    .publish(type, 'waits', { signal: AbortSignal.timeout(60_000) })
    .catch((caught: PlugmqError) => caught);
  await new Promise((resolve) => setTimeout(resolve, 300));
  await broker.restart();
  const outcome = await waiting;
  // publishTimeoutMs (1 s) still bounds it when the restart takes longer; never resolved unstored.
  if (typeof outcome === 'string') {
    await waitFor(() => got.includes('waits'), 15_000, 'the publish made during the outage to arrive');
  } else {
    expect(outcome.code).toBe('PUBLISH_FAILED');
  }
  // The 1 s publishTimeoutMs would also bound this publish if the client were still reconnecting
  // (slow under load), so wait until the manager reports the connection back first.
  await waitFor(async () => (await manager.health()).ok, 30_000, 'the connection to come back');
  await manager.publish(type, 'after');
  await waitFor(() => got.includes('after'), 15_000, 'consumption to resume after the restart');
  await manager.close();
}, 120_000);

test('close() does not hang while Redis is down', async () => {
  const manager = await createQueueManager({ driver: 'redis', url: broker.url, connectTimeoutMs: 1_000 });
  const type = uniqueType('down-close');
  await manager.consume(type, () => {}, { group: uniqueGroup(), concurrency: 4 });
  await manager.request(type, 1, { timeoutMs: 200 }).catch(() => {});
  await broker.kill();
  const started = Date.now();
  await manager.close();
  expect(Date.now() - started).toBeLessThan(10_000);
  await broker.restart();
}, 120_000);
