import { PlugmqError } from '@plugmq/core';
import { assertPayloadKey, type PayloadStore } from './store.js';

/**
 * The three ioredis calls the store makes, so that this package's types do not need ioredis
 * installed: an ioredis `Redis` or `Cluster` fits.
 */
export interface RedisPayloadClient {
  set(key: string, value: Buffer, mode: 'PX', milliseconds: number): Promise<unknown>;
  getBuffer(key: string): Promise<Buffer | null>;
  del(key: string): Promise<number>;
}

export interface RedisPayloadStoreOptions {
  /** Prepended to every key (default `plugmq:payload:`). */
  readonly keyPrefix?: string;
}

/**
 * Payloads as Redis strings with a TTL (SET PX), so Redis itself drops them after the retention
 * time. Takes the application's ioredis client (or Cluster); closing it stays the caller's job.
 */
export function redisPayloadStore(
  redis: RedisPayloadClient,
  options: RedisPayloadStoreOptions = {},
): PayloadStore {
  if (typeof redis?.getBuffer !== 'function') {
    throw new PlugmqError('INVALID_ARGUMENT', 'redis must be an ioredis client (new Redis(url))');
  }
  const prefix = options.keyPrefix ?? 'plugmq:payload:';
  return {
    async put(key, bytes, { ttlMs }) {
      assertPayloadKey(key);
      const value = Buffer.isBuffer(bytes)
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      await redis.set(prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
    },
    async get(key) {
      assertPayloadKey(key);
      return (await redis.getBuffer(prefix + key)) ?? undefined;
    },
    async delete(key) {
      assertPayloadKey(key);
      await redis.del(prefix + key);
    },
  };
}
