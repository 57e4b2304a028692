import { invalidMessage, runSchema, type SchemaRegistry } from './catalog.js';
import type { CodecRegistry } from './codec.js';
import { deadLetterEnvelope, defaultDeadLetterType } from './dead-letter.js';
import { describeError, isPlugmqError } from './errors.js';
import type { ManagerEvents, SubscriptionInfo } from './events.js';
import type { Logger } from './logger.js';
import { isExhausted, isRetryable, type RetryPolicy, retryDelayMs } from './retry.js';
import { DeliveryScheduler } from './scheduler.js';
import type { StandardSchemaV1 } from './standard-schema.js';
import type { DeliverFn, Delivery, Envelope, OutgoingEnvelope, TransportSubscription } from './transport.js';
import type { Handler, Message, Subscription } from './types.js';

export interface SubscriptionDeps {
  readonly codecs: CodecRegistry;
  /** The manager's catalog schemas: a delivery of a declared type is checked before its handler. */
  readonly schemas: SchemaRegistry;
  readonly logger: Logger;
  readonly events: ManagerEvents;
  readonly closeTimeoutMs: number;
  /** Publishes a dead-letter copy through the manager (tracked like any publish). */
  publishDeadLetter(envelope: OutgoingEnvelope): Promise<void>;
  onClosed(subscription: ManagedSubscription): void;
}

export interface SubscriptionSettings {
  readonly types: readonly string[];
  readonly group: string;
  readonly concurrency: number;
  readonly retry: RetryPolicy;
  readonly deadLetter: string | false;
  /** false: run same-key deliveries at once (batch subscriptions order them themselves). */
  readonly serialKeys?: boolean;
}

/** Where a subscription stands, as `health()` reports it per subscription. */
export type SubscriptionState = 'starting' | 'live' | 'stopping' | 'lost';

/** How long close waits, after aborting handlers' signals, for handlers that honour them. */
const ABORT_GRACE_MS = 5_000;

/**
 * One live consume(): decodes, runs the handler under the concurrency limit, and settles each
 * delivery (ack, retry with back-off, or dead-letter). The transport only moves bytes.
 */
export class ManagedSubscription implements Subscription {
  readonly types: readonly string[];
  readonly group: string;
  private transportSubscription: TransportSubscription | undefined;
  private readonly scheduler: DeliveryScheduler;
  private readonly shutdown = new AbortController();
  /** One context object for every call: its signal is the subscription's shutdown signal. */
  private readonly context = { signal: this.shutdown.signal };
  private stopping = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly settings: SubscriptionSettings,
    private readonly handler: Handler<unknown>,
    private readonly deps: SubscriptionDeps,
  ) {
    this.types = Object.freeze([...settings.types]);
    this.group = settings.group;
    this.scheduler = new DeliveryScheduler(
      settings.concurrency,
      (delivery) => this.handle(delivery),
      settings.serialKeys,
    );
  }

  /** The function the transport calls for every delivery. */
  readonly deliver: DeliverFn = Object.assign(
    (delivery: Delivery): Promise<void> => {
      if (this.stopping) return Promise.resolve(this.settle(delivery, delivery.release));
      return this.scheduler.submit(delivery);
    },
    {
      submit: (delivery: Delivery): void => {
        if (this.stopping) void this.settle(delivery, delivery.release);
        else this.scheduler.enqueue(delivery);
      },
    },
  );

  attach(transportSubscription: TransportSubscription): void {
    this.transportSubscription = transportSubscription;
  }

  /**
   * 'starting' until the transport subscribed, 'stopping' once close() began, 'lost' where the
   * transport says its consume loop ended on its own; 'live' otherwise.
   */
  get state(): SubscriptionState {
    if (this.stopping) return 'stopping';
    if (this.transportSubscription === undefined) return 'starting';
    return this.transportSubscription.isLive?.() === false ? 'lost' : 'live';
  }

  get inFlight(): number {
    return this.scheduler.inFlight;
  }

  info(): SubscriptionInfo {
    const { types, group, concurrency, deadLetter } = this.settings;
    return { types, group, concurrency, deadLetter, inFlight: this.scheduler.inFlight };
  }

  close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private async drain(): Promise<void> {
    this.stopping = true;
    this.scheduler.pause();
    try {
      await this.transportSubscription?.stop();
    } catch (error) {
      this.deps.logger.warn(
        { err: describeError(error), group: this.group, types: this.types },
        'plugmq: stopping a subscription failed',
      );
    }
    await Promise.all(
      this.scheduler.takePending().map((delivery) => this.settle(delivery, delivery.release)),
    );
    if (!(await this.waitIdle(this.deps.closeTimeoutMs))) {
      this.shutdown.abort();
      this.deps.logger.warn(
        { group: this.group, types: this.types, inFlight: this.scheduler.inFlight },
        'plugmq: handlers outlasted closeTimeoutMs; their signals were aborted',
      );
      if (!(await this.waitIdle(ABORT_GRACE_MS))) {
        this.deps.logger.error(
          { group: this.group, types: this.types, inFlight: this.scheduler.inFlight },
          'plugmq: handlers ignored their abort signal; closing without them',
        );
      }
    }
    this.deps.onClosed(this);
  }

  private async waitIdle(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const idle = this.scheduler.idle().then(() => true as const);
    try {
      return await Promise.race([idle, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private handle(delivery: Delivery): Promise<void> {
    const envelope = delivery.envelope;
    let body: unknown;
    try {
      body = this.deps.codecs.decodeEnvelope(envelope);
    } catch (error) {
      return this.exhaust(delivery, error, 'decode');
    }
    const schema = this.deps.schemas.size === 0 ? undefined : this.deps.schemas.get(envelope.type);
    if (schema !== undefined) return this.handleChecked(delivery, body, schema);
    return this.runHandler(delivery, messageOf(envelope, body));
  }

  private async handleChecked(delivery: Delivery, body: unknown, schema: StandardSchemaV1): Promise<void> {
    const envelope = delivery.envelope;
    let checked: StandardSchemaV1.Result<unknown>;
    try {
      checked = await runSchema(schema, body, (result) => result);
    } catch (error) {
      // A validator that throws (one that looks something up, say) may succeed later: retried.
      if (this.shutdown.signal.aborted) return this.settle(delivery, delivery.release);
      return this.fail(delivery, messageOf(envelope, body), error);
    }
    if (checked.issues)
      return this.exhaust(delivery, invalidMessage(envelope.type, checked.issues), 'schema');
    return this.runHandler(delivery, messageOf(envelope, checked.value));
  }

  /**
   * A promise chain, not an async function: one promise and one await less per message, the
   * largest share of core's cost per delivery once bodies are cheap.
   */
  private runHandler(delivery: Delivery, message: Message<unknown>): Promise<void> {
    let started = 0;
    if (this.deps.events.enabled) {
      started = performance.now();
      this.deps.events.delivered(delivery.envelope, this.group);
    }
    let running: unknown;
    try {
      running = this.handler(message, this.context);
    } catch (error) {
      // As from an async function: whatever goes wrong from here on rejects, never throws.
      try {
        return Promise.resolve(this.handlerFailed(delivery, message, error, started));
      } catch (failure) {
        return Promise.reject(failure);
      }
    }
    return Promise.resolve(running).then(
      () => this.handlerSucceeded(delivery, started),
      (error: unknown) => this.handlerFailed(delivery, message, error, started),
    );
  }

  private handlerSucceeded(delivery: Delivery, started: number): Promise<void> | undefined {
    this.deps.events.handled(delivery.envelope, this.group, 'acked', started);
    return this.settle(delivery, delivery.ack);
  }

  private handlerFailed(
    delivery: Delivery,
    message: Message<unknown>,
    error: unknown,
    started: number,
  ): Promise<void> | undefined {
    this.deps.events.handled(delivery.envelope, this.group, 'failed', started);
    if (this.shutdown.signal.aborted) return this.settle(delivery, delivery.release);
    return this.fail(delivery, message, error);
  }

  private fail(delivery: Delivery, message: Message<unknown>, error: unknown): Promise<void> | undefined {
    const { envelope } = delivery;
    if (!isRetryable(this.settings.retry, error, message, this.predicateFailed)) {
      return this.exhaust(delivery, error, 'unrecoverable');
    }
    if (isExhausted(this.settings.retry, envelope.attempt)) return this.exhaust(delivery, error, 'handler');
    const delayMs = retryDelayMs(this.settings.retry, envelope.attempt);
    this.deps.logger.debug(
      {
        type: envelope.type,
        group: this.group,
        id: envelope.id,
        attempt: envelope.attempt,
        delayMs,
        err: describeError(error),
      },
      'plugmq: handler failed; retrying',
    );
    this.deps.events.retried(envelope, this.group);
    return this.settle(delivery, () => delivery.retry(delayMs));
  }

  /** No attempts left, not to be retried, or the body cannot be decoded or fails its schema: dead-letter, then ack. */
  private async exhaust(
    delivery: Delivery,
    error: unknown,
    reason: 'handler' | 'decode' | 'schema' | 'unrecoverable',
  ): Promise<void> {
    const { envelope } = delivery;
    const fields = {
      type: envelope.type,
      group: this.group,
      id: envelope.id,
      attempt: envelope.attempt,
      err: describeError(error),
    };
    const target =
      this.settings.deadLetter === false
        ? false
        : this.settings.deadLetter || defaultDeadLetterType(envelope.type);
    if (target === false) {
      this.deps.logger.error(fields, `plugmq: message dropped after ${reason} failure (deadLetter: false)`);
      this.deps.events.dropped(envelope, this.group);
      return this.settle(delivery, delivery.ack);
    }
    try {
      await this.deps.publishDeadLetter(deadLetterEnvelope(envelope, target, describeError(error)));
    } catch (publishError) {
      // The original stays unacked: the broker redelivers it and dead-lettering is tried again.
      this.deps.logger.error(
        { ...fields, deadLetter: target, publishErr: describeError(publishError) },
        'plugmq: dead-letter publish failed',
      );
      return this.settle(delivery, () => delivery.retry(retryDelayMs(this.settings.retry, 1)));
    }
    this.deps.logger.warn(
      { ...fields, deadLetter: target },
      `plugmq: message dead-lettered after ${reason} failure`,
    );
    this.deps.events.deadLettered(envelope, this.group, target);
    return this.settle(delivery, delivery.ack);
  }

  /**
   * Settling can fail while the broker is away; the broker then redelivers, so log and go on.
   * `action` runs with `delivery` as `this`: `settle(delivery, delivery.ack)` needs no closure
   * per message.
   */
  private settle(
    delivery: Delivery,
    action: (this: Delivery) => Promise<void> | void,
  ): Promise<void> | undefined {
    try {
      const settling = action.call(delivery);
      return settling ? settling.catch(this.settleFailed) : undefined;
    } catch (error) {
      this.settleFailed(error);
      return undefined;
    }
  }

  private readonly predicateFailed = (error: unknown): void => {
    this.deps.logger.warn(
      { group: this.group, types: this.types, err: describeError(error) },
      'plugmq: retry.shouldRetry threw; retrying the message as if it returned true',
    );
  };

  private readonly settleFailed = (error: unknown): void => {
    const level = isPlugmqError(error, 'CLOSED') ? 'debug' : 'warn';
    this.deps.logger[level](
      { group: this.group, err: describeError(error) },
      'plugmq: settling a delivery failed',
    );
  };
}

export type { Envelope };

function messageOf(envelope: Envelope, body: unknown): Message<unknown> {
  return {
    id: envelope.id,
    type: envelope.type,
    body,
    headers: envelope.headers,
    key: envelope.key,
    timestamp: envelope.timestamp,
    attempt: envelope.attempt,
  };
}
