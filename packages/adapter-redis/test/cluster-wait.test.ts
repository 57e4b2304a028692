import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import {
  DeliveryLedger,
  type RedisCluster,
  recordingLogger,
  skipUnlessCI,
  startRedisCluster,
} from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver, typeKeys } from '../src/index.js';
import { redisClusterAvailable } from './cluster-available.js';

registerDriver(driver);

// waitForReplicas on a Cluster whose slot changes master under a live manager. A durable write
// travels in one pipeline with its WAIT (no key); ioredis follows a pipeline's MOVED only when
// every reply in it is that MOVED, and WAIT is answered by whichever node got it. So after a
// failover the pipeline kept reaching the old owner, its write refused with MOVED and its WAIT
// answered, and the client never learnt the new master: every later publish was refused until
// its deadline (8 000 of 10 000 in the cluster fault suite). A manual CLUSTER FAILOVER (as in a
// rolling upgrade) moves the slot in a second, with no node dying, so it shows the same here.

const available = await redisClusterAvailable();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** CLUSTER FAILOVER on the replica of `stream`'s master; resolves once that replica is master. */
async function manualFailover(cluster: RedisCluster, stream: string): Promise<void> {
  const master = await cluster.masterOf(stream);
  const admin = new Redis({ host: master.host, port: master.port, lazyConnect: true });
  try {
    const [line] = (await admin.cluster('REPLICAS', await master.nodeId())) as string[];
    const address = line?.split(' ')[1]?.split('@')[0];
    const replica = cluster.nodes.find((node) => `${node.host}:${node.port}` === address);
    if (!replica) throw new Error(`no replica of ${master.name} in CLUSTER REPLICAS: ${line}`);
    const promoted = new Redis({ host: replica.host, port: replica.port, lazyConnect: true });
    try {
      await promoted.cluster('FAILOVER');
      for (let i = 0; i < 200 && (await replica.role()) !== 'master'; i++) await sleep(50);
      expect(await replica.role(), `${replica.name} promoted`).toBe('master');
      await cluster.waitUntilOk(10_000);
    } finally {
      promoted.disconnect();
    }
  } finally {
    admin.disconnect();
  }
}

if (available) {
  describe('redis cluster, waitForReplicas: 1: the slot changes master under a live manager', () => {
    let cluster: RedisCluster | undefined;
    let manager: QueueManager | undefined;
    const logger = recordingLogger();
    const keyPrefix = `wait-${process.pid}`;

    beforeAll(async () => {
      cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, durable: false });
      manager = await createQueueManager({
        driver: 'redis',
        url: cluster.url,
        cluster: true,
        keyPrefix,
        logger,
        waitForReplicas: 1,
      });
    }, 120_000);
    afterAll(async () => {
      await manager?.close();
      await cluster?.stop();
    });

    test('publishes after a manual failover resolve on the new master and are delivered', async () => {
      const m = manager as QueueManager;
      const type = 'wait.failover';
      const ledger = new DeliveryLedger();
      await m.consume(type, ledger.handler, { group: 'billing' });
      const publish = async (from: number, count: number) => {
        await Promise.all(
          Array.from({ length: count }, async (_, i) => {
            const id = String(from + i);
            await m.publish(type, from + i, { id, signal: AbortSignal.timeout(10_000) });
            ledger.resolved.add(id);
          }),
        );
      };
      // The first publishes teach the client the slot's master.
      await publish(0, 20);
      await manualFailover(cluster as RedisCluster, typeKeys(keyPrefix, type).stream);
      const started = Date.now();
      await publish(20, 20);
      const elapsed = Date.now() - started;
      await ledger.settle(15_000);
      expect(ledger.lost(), 'resolved but never delivered').toEqual([]);
      // Before the fix no publish resolved: each was refused (MOVED) until its 10 s deadline.
      expect(elapsed, 'publishes after the failover resolved before their deadline').toBeLessThan(9_000);
      expect(logger.entries.filter((e) => e.level === 'warn' || e.level === 'error')).toEqual([]);
    }, 60_000);
  });
} else {
  skipUnlessCI(
    'redis cluster waitForReplicas failover',
    'redis-server/redis-cli not installed; pnpm brokers:up redis installs them',
  );
}
