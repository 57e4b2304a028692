import { type IdempotencyClaim, type IdempotencyStore, PlugmqError } from '@plugmq/core/driver';
import type { Cluster, Redis } from 'ioredis';

export interface RedisIdempotencyStoreOptions {
  /** An ioredis client (or Cluster) the application owns: the store never connects nor quits it. */
  readonly client: Redis | Cluster;
  /** Key prefix (default 'plugmq:idempotency:'); the key is `<prefix><group>:<type>:<id>`. */
  readonly prefix?: string;
}

const DONE = 'done';

// One round trip, atomic: take the key if free (SET NX PX), else say who holds it.
const CLAIM = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'claimed' end
if redis.call('GET', KEYS[1]) == '${DONE}' then return 'done' end
return 'running'`;

// Only the run that claimed may free the key: a claim that expired and was taken again stays.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * An IdempotencyStore in Redis, shared by every process of a group: `withIdempotency({ store:
 * new RedisIdempotencyStore({ client }), group })`. Handled ids expire after the middleware's
 * `ttlMs`, claims after its `lockTtlMs`. Works with any driver: the messages need not travel
 * through Redis.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly client: Redis | Cluster;
  private readonly prefix: string;

  constructor(options: RedisIdempotencyStoreOptions) {
    if (typeof options?.client?.eval !== 'function') {
      throw new PlugmqError(
        'INVALID_ARGUMENT',
        'RedisIdempotencyStore needs options.client: an ioredis Redis or Cluster instance',
      );
    }
    if (options.prefix !== undefined && typeof options.prefix !== 'string') {
      throw new PlugmqError('INVALID_ARGUMENT', 'RedisIdempotencyStore options.prefix must be a string');
    }
    this.client = options.client;
    this.prefix = options.prefix ?? 'plugmq:idempotency:';
  }

  async claim(key: string, token: string, lockTtlMs: number): Promise<IdempotencyClaim> {
    const state = await this.client.eval(CLAIM, 1, this.prefix + key, token, String(lockTtlMs));
    return state as IdempotencyClaim;
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    await this.client.set(this.prefix + key, DONE, 'PX', ttlMs);
  }

  async release(key: string, token: string): Promise<void> {
    await this.client.eval(RELEASE, 1, this.prefix + key, token);
  }
}
