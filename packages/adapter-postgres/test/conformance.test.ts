import { createQueueManager, registerDriver } from '@plugmq/core';
import { type PostgresHandle, runConformance, startPostgres } from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

let server: PostgresHandle | undefined;
beforeAll(async () => {
  server = await startPostgres();
}, 180_000);
afterAll(() => server?.stop());

// Each run writes in its own schema, so runs never see each other's leftovers.
const schema = `plugmq_test_${process.pid}`;

// With retentionMs, so that the startFrom 'earliest' scenarios run (test/retention.test.ts covers
// the default, without it).
runConformance({
  name: 'postgres',
  create: (overrides) =>
    createQueueManager({ driver: 'postgres', url: server?.url, schema, retentionMs: 60_000, ...overrides }),
  // Nothing listens on port 1; the password must never show in the CONNECTION error.
  unreachable: { url: 'postgres://plugmq:s3cret-pw@127.0.0.1:1/postgres', connectTimeoutMs: 1_000 },
  sizeLimit: { overrides: { maxMessageBytes: 4096 }, option: 'maxMessageBytes', maxBytes: 4096 },
  // No smallBuffer: a table has no bounded buffer that could fill (publish never waits for consumers).
});
