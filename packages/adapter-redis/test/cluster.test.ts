import { createQueueManager, registerDriver } from '@plugmq/core';
import { type RedisCluster, runConformance, skipUnlessCI, startRedisCluster } from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';
import { redisClusterAvailable } from './cluster-available.js';

registerDriver(driver);

// The whole conformance suite again, on a Redis Cluster the test starts on loopback (3 masters,
// one replica each: the shape a failover needs), through an ioredis Cluster client
// (`cluster: true`). One cluster for the file; no persistence (no node is killed here). Needs redis-server/redis-cli on PATH
// (`pnpm brokers:up redis` installs them); under CI=true their absence fails the run.
const available = await redisClusterAvailable();

let cluster: RedisCluster | undefined;
const keyPrefix = `plugmq-cluster-${process.pid}`;

if (available) {
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, durable: false });
  }, 120_000);
  afterAll(() => cluster?.stop());
  runConformance({
    name: 'redis-cluster',
    create: (overrides) =>
      createQueueManager({ driver: 'redis', url: cluster?.url, cluster: true, keyPrefix, ...overrides }),
    unreachable: { url: 'redis://plugmq:s3cret-pw@127.0.0.1:1', cluster: true, connectTimeoutMs: 1_000 },
  });
} else {
  skipUnlessCI(
    'plugmq conformance: redis-cluster',
    'redis-server/redis-cli not installed; pnpm brokers:up redis installs them',
  );
}
