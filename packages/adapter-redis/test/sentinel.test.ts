import { createQueueManager, type PlugmqError, type QueueManager, registerDriver } from '@plugmq/core';
import {
  canStartRedisSentinel,
  type RedisSentinelSet,
  runConformance,
  skipUnlessCI,
  startRedisSentinel,
} from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { ReplicaWaits } from '../src/replica-wait.js';
import { isTransient } from '../src/transient.js';

registerDriver(driver);

// The driver behind Sentinels (no failover here: see test/faults/sentinel-failover.test.ts), and
// waitForReplicas: publishes resolve once replicas acknowledged, and fail with the shortfall
// named when too few exist. Needs redis-server/redis-cli (`pnpm brokers:up redis`).
const available = await canStartRedisSentinel();
if (!available && process.env.CI === 'true') {
  throw new Error(
    'redis-server/redis-cli are not installed: cannot start the loopback Redis Sentinel under CI',
  );
}

const keyPrefix = `sentinel-${process.pid}`;

async function roundTrip(manager: QueueManager, type: string, count: number): Promise<Set<number>> {
  const got = new Set<number>();
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  await manager.consume<number>(
    type,
    (message) => {
      got.add(message.body);
      if (got.size === count) done();
    },
    { group: 'g' },
  );
  await Promise.all(Array.from({ length: count }, (_, i) => manager.publish(type, i)));
  await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  return got;
}

async function rate(manager: QueueManager, type: string, count: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < count) await manager.publish(type, next++);
  };
  await Promise.all(Array.from({ length: 256 }, lane));
  return Math.round((count * 1_000) / (performance.now() - started));
}

let set: RedisSentinelSet | undefined;

if (available) {
  beforeAll(async () => {
    set = await startRedisSentinel({ durable: false });
  }, 120_000);
  afterAll(() => set?.stop());

  // Every feature through a Sentinel-found master, every write on the durable (WAIT) path.
  runConformance({
    name: 'redis-sentinel (waitForReplicas: 1)',
    create: (overrides) =>
      createQueueManager({ driver: 'redis', url: set?.url, keyPrefix, waitForReplicas: 1, ...overrides }),
    unreachable: { url: 'redis+sentinel://plugmq:s3cret-pw@127.0.0.1:1/plugmq', connectTimeoutMs: 1_000 },
  });

  describe('redis behind Sentinels (1 master, 2 replicas, 3 Sentinels)', () => {
    test('the redis+sentinel:// url: publish and consume on the master the Sentinels name', async () => {
      const manager = await createQueueManager({ driver: 'redis', url: set?.url, keyPrefix });
      try {
        expect((await roundTrip(manager, 'sentinel.url', 50)).size).toBe(50);
        const health = await manager.health();
        expect(health.ok).toBe(true);
        expect(JSON.stringify(health)).toContain('"sentinelName":"plugmq"');
      } finally {
        await manager.close();
      }
    });

    test("ioredis' shape: sentinels + sentinelName", async () => {
      const s = set as RedisSentinelSet;
      const manager = await createQueueManager({
        driver: 'redis',
        sentinels: s.sentinels.map(({ host, port }) => ({ host, port })),
        sentinelName: s.masterName,
        keyPrefix,
      });
      try {
        expect((await roundTrip(manager, 'sentinel.options', 20)).size).toBe(20);
      } finally {
        await manager.close();
      }
    });

    test('waitForReplicas: 2 resolves single publishes and batches (several types, delayed) once both replicas have them', async () => {
      const manager = await createQueueManager({
        driver: 'redis',
        url: set?.url,
        keyPrefix,
        waitForReplicas: 2,
      });
      try {
        expect((await roundTrip(manager, 'sentinel.wait', 200)).size).toBe(200);
        const got: string[] = [];
        for (const type of ['sentinel.batch.a', 'sentinel.batch.b']) {
          await manager.consume<string>(type, (message) => void got.push(message.body), { group: 'g' });
        }
        await manager.publishBatch([
          { type: 'sentinel.batch.a', body: 'a1' },
          { type: 'sentinel.batch.a', body: 'a2', options: { delayMs: 50 } },
          { type: 'sentinel.batch.b', body: 'b1' },
        ]);
        await manager.publish('sentinel.batch.b', 'b2', { mandatory: true });
        for (let i = 0; i < 100 && got.length < 4; i++) await new Promise((r) => setTimeout(r, 50));
        expect(got.sort()).toEqual(['a1', 'a2', 'b1', 'b2']);
      } finally {
        await manager.close();
      }
    });

    test('waitForReplicas above the replicas there are: PUBLISH_FAILED at the deadline, naming the shortfall', async () => {
      const manager = await createQueueManager({
        driver: 'redis',
        url: set?.url,
        keyPrefix,
        waitForReplicas: 3,
        waitForReplicasTimeoutMs: 100,
        publishTimeoutMs: 1_000,
      });
      try {
        const started = Date.now();
        let error: PlugmqError | undefined;
        try {
          await manager.publish('sentinel.short', 1);
        } catch (caught) {
          error = caught as PlugmqError;
        }
        expect(error?.code).toBe('PUBLISH_FAILED');
        expect(error?.message).toMatch(/only 2 of the 3 replica\(s\) waitForReplicas asks for/);
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        await manager.close();
      }
    });

    test('WAIT on a node that is a replica now fails as READONLY, which the publisher sends again', async () => {
      const s = set as RedisSentinelSet;
      const master = await s.master();
      const replica = s.nodes.find((node) => node !== master && node.running);
      const client = new Redis({ host: replica?.host, port: replica?.port, lazyConnect: true });
      try {
        const waits = new ReplicaWaits(client, 1, 100);
        const failure = await waits
          .run('sentinel.demoted', (pipeline) => pipeline.get('sentinel.demoted'))
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        expect(String(failure)).toMatch(/READONLY/);
        expect(isTransient(failure)).toBe(true);
      } finally {
        client.disconnect();
      }
    });

    test('what WAIT costs: publishes/s (256 in flight) without it, with 1 and with 2 replicas', async () => {
      const rates: Record<string, number> = {};
      for (const replicas of [0, 1, 2]) {
        const manager = await createQueueManager({
          driver: 'redis',
          url: set?.url,
          keyPrefix,
          waitForReplicas: replicas,
        });
        try {
          await rate(manager, `sentinel.rate${replicas}`, 1_000);
          rates[`waitForReplicas ${replicas}`] = await rate(manager, `sentinel.rate${replicas}`, 10_000);
        } finally {
          await manager.close();
        }
      }
      console.log(
        `redis sentinel publish rate (10 000 publishes, 256 in flight, no AOF): ${JSON.stringify(rates)}`,
      );
      expect(Object.values(rates).every((value) => value > 0)).toBe(true);
    }, 60_000);
  });
} else {
  skipUnlessCI('redis sentinel', 'redis-server/redis-cli not installed; pnpm brokers:up redis installs them');
}
