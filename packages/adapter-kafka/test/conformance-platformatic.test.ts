import { createQueueManager, registerDriver } from '@plugmq/core';
import { runConformance } from '@plugmq/testkit';
import { afterAll } from 'vitest';
import { driver } from '../src/index.js';
import { kafkaBroker, TEST_OPTIONS } from './broker.js';

registerDriver(driver);

const broker = await kafkaBroker();
afterAll(() => broker.stop(), 60_000);

runConformance({
  name: 'kafka (platformatic)',
  // Joining a group, creating topics and rebalancing take Kafka seconds where memory takes none.
  timeScale: 3,
  create: (overrides) =>
    createQueueManager({
      driver: 'kafka',
      url: broker.url,
      ...TEST_OPTIONS,
      client: 'platformatic',
      // Priority bands on here only (not in conformance.test.ts), so the priority scenario runs
      // on one client and the rest of the suite also covers a manager with band topics; the
      // kafkajs side of priority is test/priority.test.ts.
      priorityLevels: 10,
      ...overrides,
    }),
  // SASL/PLAIN credentials from the URL; nothing listens on port 1.
  unreachable: { url: 'kafka://user:s3cret@127.0.0.1:1', connectTimeoutMs: 2_000, client: 'platformatic' },
  sizeLimit: { overrides: { maxMessageBytes: 4096 }, option: 'maxMessageBytes', maxBytes: 4096 },
  // No smallBuffer: Kafka has no bounded per-group buffer (the topic's log is the buffer).
});
