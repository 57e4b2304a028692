import type { PlugmqEventListener, SubscriptionInfo } from './events.js';
import type { ManagerMiddleware } from './hooks.js';
import type { DeadLetters, Inspection, InspectQuery } from './inspection.js';

// The types of inspect() and deadLetters belong to the API like PublishOptions does.
export type {
  BrowseDeadLettersOptions,
  DeadLetterRecord,
  DeadLetterState,
  DeadLetters,
  GroupState,
  Inspection,
  InspectQuery,
  PartitionLag,
  ReplayDeadLettersOptions,
} from './inspection.js';

/** A message as application code sees it: decoded, immutable. */
export interface Message<T = unknown> {
  /** Unique; publish generates one when none is given. */
  readonly id: string;
  /** Message type: the routing key, topic or stream. */
  readonly type: string;
  /** Decoded payload (JSON by default; a `Uint8Array` body travels as raw bytes). */
  readonly body: T;
  readonly headers: Readonly<Record<string, string>>;
  /** Ordering key: the same key is delivered in order inside a group. */
  readonly key?: string;
  /** Milliseconds since the epoch, set at publish. */
  readonly timestamp: number;
  /** 1 on first delivery, then 2, 3, ... on redelivery. */
  readonly attempt: number;
}

export interface PublishOptions {
  id?: string;
  key?: string;
  headers?: Record<string, string>;
  /** Deliver no sooner than this many milliseconds from now (integer >= 0). */
  delayMs?: number;
  /** 0-9, higher is delivered first. */
  priority?: number;
  /** Reject with PUBLISH_FAILED instead of counting the message as unrouted when no group exists. */
  mandatory?: boolean;
  signal?: AbortSignal;
}

export interface PublishBatchItem<T = unknown> {
  type: string;
  body: T;
  options?: PublishOptions;
}

export interface HandlerContext {
  /** Aborted when a shutdown outlasts the manager's `closeTimeoutMs`. */
  signal: AbortSignal;
}

export type Handler<T = unknown> = (message: Message<T>, context: HandlerContext) => void | Promise<void>;

export interface RetryOptions {
  /** Deliveries in all, the first included (default 5; 1 means no retry). */
  maxAttempts?: number;
  /** Delay before the second attempt (default 1000 ms). */
  initialDelayMs?: number;
  /** Upper bound of any delay (default 60 000 ms). */
  maxDelayMs?: number;
  /** Growth of the delay per attempt (default 2). */
  factor?: number;
  /** Spread each delay by up to ±20 % (default false, so delays are exact). */
  jitter?: boolean;
  /**
   * Asked after each handler failure that has attempts left: `false` sends the message to the
   * dead-letter type at once, not retried. An `UnrecoverableError` is never retried, whatever this
   * says. A predicate that throws counts as `true` (the message is retried).
   */
  shouldRetry?: (error: unknown, message: Message<unknown>) => boolean;
}

export interface ConsumeOptions {
  group: string;
  /** Handlers in flight at once (default 1). */
  concurrency?: number;
  retry?: RetryOptions;
  /** Where exhausted messages go; default `${type}.dlq`; `false` drops them after an error log. */
  deadLetter?: string | false;
  /** For a group seen for the first time (default 'latest'). */
  startFrom?: 'latest' | 'earliest';
  /** Aborting closes the subscription. */
  signal?: AbortSignal;
}

/** What a batch handler gets beside the messages. */
export interface BatchContext<T = unknown> extends HandlerContext {
  /**
   * Settles one message of the batch as failed: it is retried (or dead-lettered once its attempts
   * are spent) like a message whose handler threw `error`; the others are acked when the handler
   * resolves. Call it before the handler returns.
   */
  fail(message: Message<T>, error?: unknown): void;
}

/**
 * Receives 1 to `maxBatchSize` messages in delivery order. Resolving acks every message not passed
 * to `context.fail`; throwing fails the whole batch (each message is retried or dead-lettered on its own).
 */
export type BatchHandler<T = unknown> = (
  messages: readonly Message<T>[],
  context: BatchContext<T>,
) => void | Promise<void>;

export interface BatchConsumeOptions extends Omit<ConsumeOptions, 'concurrency'> {
  /** Most messages handed to one handler call (default 100, at most 10 000). */
  maxBatchSize?: number;
  /** Longest a partial batch waits for more messages after its first one arrived (default 100 ms). */
  maxWaitMs?: number;
}

export interface Subscription {
  readonly types: readonly string[];
  readonly group: string;
  close(): Promise<void>;
}

export interface Capabilities {
  persistent: boolean;
  orderedByKey: boolean;
  delay: boolean;
  priority: boolean;
  newGroupReceivesOldMessages: boolean;
  requestReply: boolean;
}

export interface RequestOptions {
  /** Default 30 000 ms; TIMEOUT when no reply arrives in time. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface RespondOptions {
  /** Responders in one group share requests (default 'plugmq.responders'). */
  group?: string;
}

export interface HealthReport {
  ok: boolean;
  driver: string;
  details?: Record<string, unknown>;
}

export interface QueueManager {
  /** 'memory' | 'rabbitmq' | 'kafka' | 'redis' | a third-party name. */
  readonly driver: string;
  readonly capabilities: Capabilities;
  /** Resolves with the message id once the message is durable (broker confirmed). */
  publish<T>(type: string, body: T, options?: PublishOptions): Promise<string>;
  publishBatch<T>(items: PublishBatchItem<T>[]): Promise<string[]>;
  /** Resolves once the subscription is live. */
  consume<T>(types: string | string[], handler: Handler<T>, options: ConsumeOptions): Promise<Subscription>;
  /** Like consume, but the handler gets messages in batches; one batch runs at a time. */
  consumeBatch<T>(
    types: string | string[],
    handler: BatchHandler<T>,
    options: BatchConsumeOptions,
  ): Promise<Subscription>;
  request<Req, Res>(type: string, body: Req, options?: RequestOptions): Promise<Res>;
  respond<Req, Res>(
    type: string,
    handler: (message: Message<Req>) => Res | Promise<Res>,
    options?: RespondOptions,
  ): Promise<Subscription>;
  health(): Promise<HealthReport>;
  /**
   * Manager-wide middleware (tracing, metrics): `publish` runs for every later publish (it may add
   * headers), `handle` wraps the handler of every later consume. Returns a remover.
   */
  use(middleware: ManagerMiddleware): () => void;
  /** What happens inside the manager, for observers: `queue.events.on(listener)`; free when nobody listens. */
  readonly events: ManagerEventSource;
  /** The live subscriptions of this manager (types, group, concurrency, in flight). */
  subscriptionInfo(): SubscriptionInfo[];
  /**
   * What the broker holds, whichever process put it there: backlog, in-flight and oldest waiting
   * message per (type, group), and dead letters at rest per dead-letter type. Cheap enough to
   * poll every few seconds. UNSUPPORTED where the driver cannot tell.
   */
  inspect(query?: InspectQuery): Promise<Inspection>;
  /** Dead letters at rest: browse and replay them (UNSUPPORTED where the driver cannot keep them). */
  readonly deadLetters: DeadLetters;
  /** Stop consuming, finish in-flight handlers, flush publishes, disconnect; idempotent. */
  close(): Promise<void>;
}

export interface ManagerEventSource {
  /** Adds a listener (published, delivered, handled, retried, dead-lettered, …); returns a remover. */
  on(listener: PlugmqEventListener): () => void;
  /** True while at least one listener is registered. */
  readonly enabled: boolean;
}

export interface Consumer<T = unknown> {
  readonly types: string[];
  readonly group: string;
  readonly options?: Omit<ConsumeOptions, 'group'>;
  handle(message: Message<T>, context: HandlerContext): Promise<void>;
}
