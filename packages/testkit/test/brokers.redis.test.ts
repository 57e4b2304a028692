import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { describeWithBroker } from '../src/brokers/index.js';
import { FAULT_TEST_MS, unique, VARIANTS } from './brokers-support.js';

async function withClient<T>(url: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  // No offline queue and no retries: a test must see a dead broker as an error, not a hang.
  const redis = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
  redis.on('error', () => undefined); // connection errors surface through the command promises
  await redis.connect();
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

for (const variant of VARIANTS) {
  await describeWithBroker(
    'redis',
    `redis smoke (${variant.label})`,
    (broker) => {
      it('publishes one message to a stream and consumes it', async () => {
        await withClient(broker().url, async (redis) => {
          const stream = unique('smoke');
          await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
          await redis.xadd(stream, '*', 'body', 'hello');
          const read = (await redis.xreadgroup('GROUP', 'g', 'c1', 'COUNT', 1, 'STREAMS', stream, '>')) as
            | [string, [string, string[]][]][]
            | null;
          const entry = read?.[0]?.[1][0];
          expect(entry?.[1]).toEqual(['body', 'hello']);
          expect(await redis.xack(stream, 'g', entry?.[0] ?? '')).toBe(1);
        });
      });
    },
    { source: variant.smoke },
  );

  await describeWithBroker(
    'redis',
    `redis restart and kill (${variant.label})`,
    (broker) => {
      it(
        'restart() keeps data (AOF)',
        async () => {
          const key = unique('kept');
          await withClient(broker().url, (r) => r.set(key, 'v1'));
          await broker().restart();
          expect(await withClient(broker().url, (r) => r.get(key))).toBe('v1');
        },
        FAULT_TEST_MS,
      );

      it(
        'kill() then restart() keeps every acknowledged write (appendfsync always)',
        async () => {
          const key = unique('acked');
          await withClient(broker().url, (r) => r.rpush(key, 'a', 'b', 'c'));
          await broker().kill();
          await expect(withClient(broker().url, (r) => r.ping())).rejects.toThrow();
          await broker().restart();
          expect(await withClient(broker().url, (r) => r.lrange(key, 0, -1))).toEqual(['a', 'b', 'c']);
        },
        FAULT_TEST_MS,
      );
    },
    { source: variant.faults },
  );
}
