/**
 * `@plugmq/core/driver`: the driver kit. Everything `@plugmq/core` offers applications, plus the
 * seam (`Transport`, `defineTransportDriver`) and the helpers drivers and integrations share.
 * Application code imports `@plugmq/core`; a driver imports this. See docs/WRITING-A-DRIVER.md.
 */

export { Batcher, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_WAIT_MS } from './batch.js';
export {
  type Catalog,
  type CatalogBatchItem,
  type CatalogBody,
  type CatalogHandler,
  type CatalogHolder,
  type CatalogInput,
  type CatalogLike,
  type CatalogMessage,
  type CatalogMethods,
  type CatalogQueueManager,
  type CatalogSchemas,
  defineCatalog,
  describeIssues,
  isCatalog,
} from './catalog.js';
export {
  type Codec,
  CodecRegistry,
  type EncodedBody,
  type InProcessBodies,
  JSON_CONTENT_TYPE,
  JSON_TEXT_CONTENT_TYPE,
  JSON_VALUE_CONTENT_TYPE,
  jsonCodec,
  RAW_CONTENT_TYPE,
  rawCodec,
  VALUE_CONTENT_TYPE,
} from './codec.js';
export type { DriverDeps, PlugmqConfig } from './config.js';
export {
  configFromEnv,
  configInvalid,
  integerOption,
  type TlsOptions,
  tlsOption,
  validateCoreConfig,
} from './config-loading.js';
export {
  acceptsConnections,
  type ConnectFailure,
  type ConnectFailureKind,
  describeConnectFailure,
  moreTelling,
  tlsStalled,
} from './connect-errors.js';
export { ConsumerManager } from './consumer-manager.js';
export { createContainer, createQueueManager, TYPES } from './container.js';
export {
  DEAD_LETTER_GROUP,
  DEAD_LETTER_HEADERS,
  deadLetterEnvelope,
  defaultDeadLetterType,
} from './dead-letter.js';
export { defineTransportDriver, type TransportDriverSpec } from './define-driver.js';
export type { DriverDefinition } from './driver.js';
export {
  describeError,
  ERROR_CODES,
  type ErrorCode,
  isPlugmqError,
  PlugmqError,
  UnrecoverableError,
} from './errors.js';
export type { PlugmqEvent, PlugmqEventListener, SubscriptionInfo } from './events.js';
export type { HandleScope, ManagerMiddleware, PublishHook, PublishingMessage } from './hooks.js';
export {
  DEFAULT_IDEMPOTENCY_LOCK_TTL_MS,
  DEFAULT_IDEMPOTENCY_TTL_MS,
  type IdempotencyClaim,
  type IdempotencyOptions,
  type IdempotencyStore,
  MemoryIdempotencyStore,
  withIdempotency,
} from './idempotency.js';
export * from './index.js';
export type { TransportInspection } from './inspection.js';
export { type Instrumentable, instrumentable } from './instrumentation.js';
export { LinkedList, ListNode } from './linked-list.js';
export { childLogger, type LogFn, type Logger, silentLogger } from './logger.js';
export {
  assertBodySizes,
  bodyBytes,
  type MessageSizeLimit,
  messageTooLarge,
} from './message-size.js';
export {
  applyMiddleware,
  type HandlerMiddleware,
  withConsumerMiddleware,
  withTimeout,
} from './middleware.js';
export { OVERDUE_TICK_MS, OverdueWatch, OverdueWatched } from './overdue.js';
export { MAX_PARTITIONS, partitionOfKey, partitionsOption } from './partitions.js';
export {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_PUBLISH_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  TransportQueueManager,
} from './queue-manager.js';
export { availableDrivers, registerDriver, registeredDrivers, resolveDriver } from './registry.js';
export { DEFAULT_RESPONDER_GROUP, REPLY_HEADERS, ResponderError } from './request-reply.js';
export {
  DEFAULT_RETRY_POLICY,
  isExhausted,
  isRetryable,
  nextAttempt,
  type RetryPolicy,
  resolveRetryPolicy,
  retryDelayMs,
} from './retry.js';
export { DeliveryScheduler } from './scheduler.js';
export { abortReason, delay, waitForAbort, withDeadline } from './signals.js';
export type { StandardSchemaV1 } from './standard-schema.js';
export type {
  DeliverFn,
  Delivery,
  Envelope,
  OutgoingEnvelope,
  ReplyChannel,
  ReplyTransport,
  SubscribeRequest,
  Transport,
  TransportHooks,
  TransportInspectQuery,
  TransportPublishContext,
  TransportSubscription,
} from './transport.js';
export { toDeliverFn } from './transport.js';

export { parseConnectionUrl, parseUrlList, redactCredentials } from './url.js';
export {
  assertMessageType,
  invalidArgument,
  validateConsumeArguments,
  validatePublishOptions,
} from './validation.js';
export {
  envelopeFromWireHeaders,
  envelopeToWireHeaders,
  WIRE,
  wireAttempt,
  wirePriority,
  wireTimestamp,
} from './wire-headers.js';
