// The application surface of PlugMQ. Drivers and integrations import `@plugmq/core/driver`
// (src/kit.ts), which adds the driver seam and the helpers drivers share.
export { type Catalog, type CatalogBody, type CatalogQueueManager, defineCatalog } from './catalog.js';
export { type Codec, JSON_CONTENT_TYPE, jsonCodec, RAW_CONTENT_TYPE, rawCodec } from './codec.js';
export type { PlugmqConfig } from './config.js';
export { configFromEnv } from './config-loading.js';
export { ConsumerManager } from './consumer-manager.js';
export { createContainer, createQueueManager, TYPES } from './container.js';
export { DEAD_LETTER_HEADERS } from './dead-letter.js';
export type { DriverDefinition } from './driver.js';
export { ERROR_CODES, type ErrorCode, isPlugmqError, PlugmqError, UnrecoverableError } from './errors.js';
export type { PlugmqEvent, PlugmqEventListener, SubscriptionInfo } from './events.js';
export type { HandleScope, ManagerMiddleware, PublishHook, PublishingMessage } from './hooks.js';
export {
  type IdempotencyClaim,
  type IdempotencyOptions,
  type IdempotencyStore,
  MemoryIdempotencyStore,
  withIdempotency,
} from './idempotency.js';
export { type Logger, silentLogger } from './logger.js';
export {
  applyMiddleware,
  type HandlerMiddleware,
  withConsumerMiddleware,
  withTimeout,
} from './middleware.js';
export { availableDrivers, registerDriver, registeredDrivers } from './registry.js';
export { ResponderError } from './request-reply.js';
export type { StandardSchemaV1 } from './standard-schema.js';
export type { SubscriptionState } from './subscription.js';
export type * from './types.js';
