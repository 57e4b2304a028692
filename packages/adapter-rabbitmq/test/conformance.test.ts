import { createQueueManager, registerDriver } from '@plugmq/core';
import type { BrokerHandle } from '@plugmq/testkit';
import { runConformance } from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';
import { rabbitBroker } from './broker.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await rabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

runConformance({
  name: 'rabbitmq',
  // Each manager gets its own exchange (namespace), so runs never see each other's leftovers.
  create: (overrides) =>
    createQueueManager({ driver: 'rabbitmq', url: broker?.url, exchange: exchangeName, ...overrides }),
});

const exchangeName = `plugmq-test-${process.pid}`;
