import { createQueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, expectPlugmqError, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { ownedRabbitBroker } from './broker.js';

registerDriver(driver);

let broker: BrokerHandle;
beforeAll(async () => {
  broker = await ownedRabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

// The broker restarted twice during a 10 000-message stream is the fault suite's scenario 1
// (test/faults, `pnpm test:faults`); this file keeps what is RabbitMQ-specific about an outage.
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
