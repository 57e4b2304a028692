import { driver as redisDriver } from '@plugmq/adapter-redis';
import { createQueueManager, type Message, registerDriver } from '@plugmq/core';
import { describeWithBroker } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { CLAIM_CHECK_HEADERS, redisPayloadStore, withClaimCheck } from '../src/index.js';

registerDriver(redisDriver);

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

await describeWithBroker('redis', 'redisPayloadStore', (broker) => {
  function client(): Redis {
    const redis = new Redis(broker().url);
    cleanups.push(() => redis.quit());
    return redis;
  }

  it('stores bytes under the prefix with the TTL, returns them, and deletes them', async () => {
    const redis = client();
    const store = redisPayloadStore(redis, { keyPrefix: 'test:payload:' });
    const bytes = Buffer.from([0, 1, 2, 255]);
    await store.put('k1', bytes, { ttlMs: 30_000 });
    expect(Buffer.compare(Buffer.from((await store.get('k1')) as Uint8Array), bytes)).toBe(0);
    const ttl = await redis.pttl('test:payload:k1');
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    await store.delete('k1');
    expect(await store.get('k1')).toBeUndefined();
    await store.put('k2', bytes, { ttlMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.get('k2')).toBeUndefined();
  });

  it('carries a claim-checked body between two managers (producer and consumer processes)', async () => {
    const store = redisPayloadStore(client());
    const producer = withClaimCheck(await createQueueManager({ driver: 'redis', url: broker().url }), {
      store,
      thresholdBytes: 1024,
    });
    const consumer = withClaimCheck(await createQueueManager({ driver: 'redis', url: broker().url }), {
      store,
      deleteAfterHandled: true,
    });
    cleanups.push(
      () => producer.close(),
      () => consumer.close(),
    );
    const got: Message<{ text: string }>[] = [];
    await consumer.consume<{ text: string }>('cc.redis.store', (m) => void got.push(m), { group: 'g' });
    await producer.publish('cc.redis.store', { text: 'r'.repeat(10_000) });
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(got[0]?.body.text).toHaveLength(10_000);
    const ref = got[0]?.headers[CLAIM_CHECK_HEADERS.ref] as string;
    // One group, deleteAfterHandled: the payload is removed once the handler returned.
    for (let i = 0; i < 100 && (await store.get(ref)) !== undefined; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(await store.get(ref)).toBeUndefined();
  });
});
