import { createQueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, startBroker, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

// FLUSHALL stands for a Redis that came back without its data: only on a broker this test owns.
let broker: BrokerHandle | undefined;
let raw: Redis;
beforeAll(async () => {
  broker = await startBroker('redis', { source: ['container', 'process'] });
  raw = new Redis(broker.url);
}, 180_000);
afterAll(async () => {
  raw?.disconnect();
  await broker?.stop();
});

test('Redis came back empty: the groups and streams are re-created and consumption goes on', async () => {
  const manager = await createQueueManager({ driver: 'redis', url: broker?.url, blockMs: 100 });
  const type = uniqueType('empty');
  const got = new Set<number>();
  const retried: number[] = [];
  await manager.consume<number>(
    type,
    (message) => {
      if (message.body === 3 && message.attempt === 1) {
        retried.push(message.body);
        throw new Error('once');
      }
      got.add(message.body);
    },
    { group: uniqueGroup(), retry: { initialDelayMs: 10 } },
  );
  await manager.publish(type, 1);
  await waitFor(() => got.has(1), 5_000, 'message 1');
  await raw.flushall();
  // The reader meets NOGROUP on its next read and re-creates the group from the stream's start.
  for (let n = 2; n <= 5; n++) await manager.publish(type, n);
  await waitFor(() => got.size === 5, 10_000, 'messages 2..5 after the flush');
  expect(retried).toEqual([3]);
  await manager.close();
});

test('Redis forgot its scripts (SCRIPT FLUSH): scripted publishes and retries run on', async () => {
  const manager = await createQueueManager({ driver: 'redis', url: broker?.url, blockMs: 100 });
  const type = uniqueType('noscript');
  const failed = new Set<number>();
  const got: number[] = [];
  // Every message fails once: its retry runs REQUEUE, the delayed retry PROMOTE, and the ack of
  // the retried entry ACK_DELETE; the publishes run PUBLISH_MANDATORY and SCHEDULE.
  await manager.consume<number>(
    type,
    (message) => {
      if (!failed.has(message.body)) {
        failed.add(message.body);
        throw new Error('once');
      }
      got.push(message.body);
    },
    { group: uniqueGroup(), retry: { initialDelayMs: 10 } },
  );
  await manager.publish(type, 1, { mandatory: true });
  await manager.publish(type, 2, { delayMs: 20 });
  await waitFor(() => got.length === 2, 5_000, 'messages 1 and 2');
  await raw.script('FLUSH');
  await manager.publish(type, 3, { mandatory: true });
  await manager.publish(type, 4, { delayMs: 20 });
  await waitFor(() => got.length === 4, 5_000, 'messages 3 and 4 after the flush');
  expect([...got].sort()).toEqual([1, 2, 3, 4]);
  await manager.close();
});
