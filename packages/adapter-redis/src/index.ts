import { defineTransportDriver } from '@plugmq/core/driver';
import {
  capabilities,
  capabilitiesFor,
  DEFAULT_URL,
  OPTIONS,
  type RedisConfig,
  type RedisTlsOptions,
  validateRedisConfig,
} from './options.js';
import { RedisTransport } from './transport.js';

/** The Redis Streams driver: `createQueueManager({ driver: 'redis', url: 'redis://…' })`. */
export const driver = defineTransportDriver<RedisConfig>({
  name: 'redis',
  capabilities,
  capabilitiesFor,
  options: OPTIONS,
  validate: validateRedisConfig,
  createTransport: (config, { logger }) => RedisTransport.create(config, logger),
});

export { groupKeys, replyKey, typeKeys } from './topology.js';
export { BODY_FIELD } from './wire.js';
export { capabilities, capabilitiesFor, DEFAULT_URL, RedisTransport };
export type { RedisConfig, RedisTlsOptions };
export { RedisIdempotencyStore, type RedisIdempotencyStoreOptions } from './idempotency-store.js';
