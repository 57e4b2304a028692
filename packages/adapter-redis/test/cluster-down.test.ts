import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { type RedisCluster, recordingLogger, skipUnlessCI, startRedisCluster } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver, typeKeys } from '../src/index.js';
import { isTransient } from '../src/transient.js';
import { redisClusterAvailable } from './cluster-available.js';

registerDriver(driver);

// A Cluster answers CLUSTERDOWN while a failed master's slots have no master yet (a failover).
// Here one master is put in that state at once and on cue: CLUSTER DELSLOTS of one of its slots
// leaves it without full coverage (cluster_state:fail, CLUSTERDOWN to every command) until
// CLUSTER ADDSLOTS gives the slot back. ioredis retries CLUSTERDOWN itself for ~1.6 s only; the
// outage here lasts longer, as a real failover does (cluster-node-timeout + election).
const OUTAGE_MS = 3_500;

const available = await redisClusterAvailable();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Takes `stream`'s master out of service (CLUSTERDOWN) until the returned restore is called. */
async function clusterDown(cluster: RedisCluster, stream: string): Promise<() => Promise<void>> {
  const master = await cluster.masterOf(stream);
  const raw = new Redis({ host: master.host, port: master.port });
  const own = Number(await raw.cluster('KEYSLOT', stream));
  const ranges = await raw.cluster('SLOTS');
  const [start] = ranges.find(([, , owner]) => owner?.[1] === master.port) ?? [];
  if (start === undefined) throw new Error(`${master.name} serves no slot`);
  const slot = start === own ? start + 1 : start;
  await raw.cluster('DELSLOTS', slot);
  for (let i = 0; i < 100 && !String(await raw.cluster('INFO')).includes('cluster_state:fail'); i++) {
    await sleep(20);
  }
  await expect(raw.xadd(stream, '*', 'probe', '1'), 'the master refuses writes').rejects.toThrow(
    /^CLUSTERDOWN/,
  );
  let restored = false;
  return async () => {
    if (restored) return;
    restored = true;
    await raw.cluster('ADDSLOTS', slot);
    raw.disconnect();
    await cluster.waitUntilOk(10_000);
  };
}

if (available) {
  describe('redis cluster: CLUSTERDOWN while a slot has no master', () => {
    let cluster: RedisCluster | undefined;
    let manager: QueueManager | undefined;
    const logger = recordingLogger();
    const keyPrefix = `down-${process.pid}`;

    beforeAll(async () => {
      cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
      manager = await createQueueManager({
        driver: 'redis',
        url: cluster.url,
        cluster: true,
        keyPrefix,
        logger,
        // The window a consume started during the outage has to create its group once the slot
        // is back: 5 s (the default) left a loaded CI run 1.5 s after a 3.5 s outage, too little.
        connectTimeoutMs: 15_000,
      });
    }, 120_000);
    afterAll(async () => {
      await manager?.close();
      await cluster?.stop();
    });

    test('a publish rides through CLUSTERDOWN within its deadline, so does a new consume; consuming goes on without warnings', async () => {
      const type = 'down.orders';
      const received: number[] = [];
      await manager?.consume<number>(type, (message) => void received.push(message.body), { group: 'g' });
      await manager?.publish(type, 1);
      const restore = await clusterDown(cluster as RedisCluster, typeKeys(keyPrefix, type).stream);
      try {
        const started = Date.now();
        const settled = (publish: Promise<unknown> | undefined) =>
          (publish as Promise<unknown>).then(
            () => `resolved after ${Date.now() - started} ms`,
            (error: { code?: string }) => `${error.code} after ${Date.now() - started} ms`,
          );
        const rides = settled(manager?.publish(type, 2, { signal: AbortSignal.timeout(10_000) }));
        // A deadline shorter than the outage still rejects, at its deadline and not before.
        const short = settled(manager?.publish(type, 3, { signal: AbortSignal.timeout(2_500) }));
        // A consume started meanwhile creates its group once the cluster is back (connectTimeoutMs).
        const late = settled(manager?.consume(type, () => {}, { group: 'late' }));
        await sleep(OUTAGE_MS);
        await restore();
        expect(await late).toMatch(/^resolved/);
        expect(await rides).toMatch(/^resolved after (3[5-9]\d\d|[4-9]\d\d\d) ms$/);
        expect(await short).toMatch(/^PUBLISH_FAILED after (2[5-9]\d\d|3[0-4]\d\d) ms$/);
      } finally {
        await restore();
      }
      for (let i = 0; i < 100 && !received.includes(2); i++) await sleep(50);
      expect(received).toContain(1);
      expect(received).toContain(2);
      expect(logger.entries.filter((entry) => entry.level === 'warn' || entry.level === 'error')).toEqual([]);
    }, 30_000);
  });
} else {
  skipUnlessCI(
    'redis cluster CLUSTERDOWN',
    'redis-server/redis-cli not installed; pnpm brokers:up redis installs them',
  );
}

test('transient replies: failover answers are retried, real refusals are not', () => {
  const transient = [
    'CLUSTERDOWN The cluster is down',
    'CLUSTERDOWN Hash slot not served',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
    'LOADING Redis is loading the dataset in memory',
    'MOVED 3999 127.0.0.1:6381',
    'ASK 3999 127.0.0.1:6381',
    'READONLY You cannot write against a read only replica.',
    'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
    'Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down',
    'Too many Cluster redirections. Last error: Error: Connection is closed.',
    'Connection is closed.',
    'Failed to refresh slots cache.',
  ];
  for (const message of transient) expect(isTransient(new Error(message)), message).toBe(true);
  const execAbort = Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), {
    previousErrors: [new Error('CLUSTERDOWN The cluster is down')],
  });
  expect(isTransient(execAbort)).toBe(true);
  const refusals = [
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    'NOGROUP No such key or consumer group',
    'ERR syntax error',
    'OOM command not allowed when used memory > maxmemory',
    'Too many Cluster redirections. Last error: ReplyError: ERR unknown command',
  ];
  for (const message of refusals) expect(isTransient(new Error(message)), message).toBe(false);
  expect(isTransient('CLUSTERDOWN')).toBe(false);
});
