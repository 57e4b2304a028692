import { createQueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, runConformance, startBroker } from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await startBroker('redis');
}, 180_000);
afterAll(() => broker?.stop());

// Each run writes under its own key prefix, so runs never see each other's leftovers.
const keyPrefix = `plugmq-partitioned-${process.pid}`;

// The same suite with ordering by key on (`partitions`): every scenario, the orderedByKey ones
// included, must pass as on the plain driver. A short lease so a departed subscription's
// partitions move on quickly.
const partitioned = { partitions: 4, leaseMs: 3_000 };

runConformance({
  name: 'redis partitions: 4',
  create: (overrides) =>
    createQueueManager({ driver: 'redis', url: broker?.url, keyPrefix, ...partitioned, ...overrides }),
  // Nothing listens on port 1; the password must never show in the CONNECTION error.
  unreachable: { url: 'redis://plugmq:s3cret-pw@127.0.0.1:1', connectTimeoutMs: 1_000 },
  sizeLimit: { overrides: { maxMessageBytes: 4096 }, option: 'maxMessageBytes', maxBytes: 4096 },
  // No smallBuffer: a Redis stream has no bounded buffer that could fill (publish never waits
  // for consumers), so the back-pressure scenarios do not apply; see the README.
});
