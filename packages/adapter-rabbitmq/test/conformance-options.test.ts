import { createQueueManager, registerDriver } from '@plugmq/core';
import type { BrokerHandle } from '@plugmq/testkit';
import { runConformance } from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';
import { rabbitBroker } from './broker.js';

// The whole contract again with the two opt-in options: `partitions: 4` (orderedByKey is true, so
// the per-key order scenarios run) and `retentionMs` (newGroupReceivesOldMessages is true, so the
// startFrom 'earliest' scenarios run, replaying into partitioned groups), beside retries, dead
// letters, delay, priority, inspect and request/reply. test/replay.test.ts covers replay alone.
registerDriver(driver);

const exchangeName = `plugmq-test-options-${process.pid}`;
let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await rabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

runConformance({
  name: 'rabbitmq (partitions: 4, retentionMs)',
  // Each of the 4 partition queues holds 4 messages and refuses more: publish waits.
  smallBuffer: { maxLength: 4, exchange: `${exchangeName}-bp` },
  unreachable: { url: 'amqp://user:s3cret@127.0.0.1:1', connectTimeoutMs: 1_000, partitions: 4 },
  sizeLimit: { overrides: { maxMessageBytes: 4096 }, option: 'maxMessageBytes', maxBytes: 4096 },
  create: (overrides) =>
    createQueueManager({
      driver: 'rabbitmq',
      url: broker?.url,
      exchange: exchangeName,
      partitions: 4,
      retentionMs: 600_000,
      ...overrides,
    }),
});
