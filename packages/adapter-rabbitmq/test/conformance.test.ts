import { createQueueManager, registerDriver } from '@plugmq/core';
import type { BrokerHandle } from '@plugmq/testkit';
import { runConformance } from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';
import { rabbitBroker } from './broker.js';

registerDriver(driver);

const exchangeName = `plugmq-test-${process.pid}`;
let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await rabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

runConformance({
  name: 'rabbitmq',
  // Group queues of 4 messages that refuse more (x-overflow: reject-publish): publish waits.
  smallBuffer: { maxLength: 4, exchange: `${exchangeName}-bp` },
  unreachable: { url: 'amqp://user:s3cret@127.0.0.1:1', connectTimeoutMs: 1_000 },
  sizeLimit: { overrides: { maxMessageBytes: 4096 }, option: 'maxMessageBytes', maxBytes: 4096 },
  // One exchange (namespace) per test process: runs never see each other's leftover queues.
  create: (overrides) =>
    createQueueManager({ driver: 'rabbitmq', url: broker?.url, exchange: exchangeName, ...overrides }),
});
