import type { InProcessBodies } from './codec.js';
import type { InspectQuery, TransportInspection } from './inspection.js';
import type { MessageSizeLimit } from './message-size.js';

/**
 * The driver seam. A broker adapter implements this small interface; core's QueueManager wraps it
 * and owns everything drivers share: validation, codecs, ids, concurrency and per-key ordering,
 * retry back-off, dead-lettering, request/reply, close/drain and unrouted accounting.
 */

/** A message on the wire: what a transport stores and delivers. */
export interface Envelope {
  readonly id: string;
  readonly type: string;
  readonly key?: string;
  /** Milliseconds since the epoch, set at the original publish. */
  readonly timestamp: number;
  /** Application headers plus PlugMQ's own `x-plugmq-*` headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** Codec content type of `body` (e.g. `application/json`). */
  readonly contentType: string;
  readonly body: Uint8Array;
  /**
   * The body as JSON text, as the value that text would parse to, or the object itself, for an
   * in-process transport that declares `inProcessBodies`; `body` is then empty.
   */
  readonly value?: unknown;
  /** 1 for a fresh publish; a transport's `retry` delivers the same envelope with attempt + 1. */
  readonly attempt: number;
  readonly priority?: number;
}

/** An envelope on its way to the broker, with the per-publish options a transport must honour. */
export interface OutgoingEnvelope extends Envelope {
  /** Deliver no sooner than this; only set when the transport declares `capabilities.delay`. */
  readonly delayMs?: number;
  /** Reject with PUBLISH_FAILED when no group would receive the message. */
  readonly mandatory?: boolean;
  /**
   * `body` as the UTF-8 text it was encoded from (JSON bodies of a publish), for a transport that
   * declares `writesText` (it sends the text; `body` is then empty). Absent otherwise.
   */
  readonly text?: string;
}

export interface TransportPublishContext {
  /** Aborted when the caller's signal aborts or the manager's publishTimeoutMs elapses. */
  readonly signal: AbortSignal;
}

/**
 * One delivered envelope of one subscription. Exactly one of ack/retry/release is called; each may
 * return nothing when it completed synchronously (the in-process driver), saving a promise per message.
 */
export interface Delivery {
  readonly envelope: Envelope;
  /** Remove the message from the group: the handler succeeded or the message was dead-lettered. */
  ack(): Promise<void> | void;
  /** Redeliver to this group only, with `attempt + 1`, no sooner than `delayMs` from now. */
  retry(delayMs: number): Promise<void> | void;
  /** Hand back an unstarted (or shutdown-aborted) message to the group without counting an attempt. */
  release(): Promise<void> | void;
}

/**
 * Given by core to `subscribe`. Resolves when the delivery has been settled (ack/retry/release
 * done). Never rejects: a failing handler, body or settle is core's to handle and log, so a driver
 * needs no `.catch` (a promise per message) on its hot path.
 */
export interface DeliverFn {
  (delivery: Delivery): Promise<void>;
  /**
   * The same hand-over without the settled promise, for a driver that learns of settlement from
   * its delivery's own ack/retry/release: a delivery waiting for a free handler slot then costs no
   * promise and no microtask (~6 % of the Redis driver's CPU per message at concurrency 16).
   */
  readonly submit: (delivery: Delivery) => void;
}

/** A DeliverFn from a plain hand-over function (`submit` calls it and drops the promise). */
export function toDeliverFn(deliver: (delivery: Delivery) => Promise<void>): DeliverFn {
  return Object.assign(deliver, { submit: (delivery: Delivery) => void deliver(delivery) });
}

export interface SubscribeRequest {
  readonly types: readonly string[];
  readonly group: string;
  /** Handlers core runs at once; size prefetch/fetch batches from it. */
  readonly concurrency: number;
  readonly startFrom: 'latest' | 'earliest';
}

export interface TransportSubscription {
  /**
   * Stop fetching. Messages fetched but not yet passed to `deliver` are handed back to the
   * group. After this resolves `deliver` is not called again. Core then waits for the settled
   * promises of running deliveries before it calls `close()` on the transport.
   */
  stop(): Promise<void>;
  /**
   * Optional: false once the consume loop stopped on its own (connection or channel lost and not
   * resumed). Core's `health()` then names the subscription as not live; without it core can only
   * tell 'starting', 'live' and 'stopping' apart.
   */
  isLive?(): boolean;
}

export interface TransportHooks {
  /** A non-mandatory message was accepted but no group exists to receive it (non-persistent drivers). */
  unrouted(envelope: Envelope): void;
}

/**
 * Optional fast path for request/reply (e.g. RabbitMQ's direct reply-to). Without it core routes
 * replies over an ordinary per-manager reply type.
 */
export interface ReplyChannel {
  /** An address a responder can send a reply to. */
  readonly address: string;
  close(): Promise<void>;
}

export interface ReplyTransport {
  openReplyChannel(onReply: (envelope: Envelope) => void): Promise<ReplyChannel>;
  sendReply(address: string, envelope: OutgoingEnvelope, context: TransportPublishContext): Promise<void>;
}

/**
 * What a driver implements. Its capabilities are declared once, on the driver definition
 * (`defineTransportDriver({ capabilities, capabilitiesFor })`), not here.
 */
export interface Transport {
  /**
   * Store every envelope durably (broker-confirmed), then resolve. Honour `context.signal` while
   * waiting. Returning nothing means stored synchronously (the in-process driver's fast path).
   */
  publish(envelopes: readonly OutgoingEnvelope[], context: TransportPublishContext): Promise<void> | void;
  /** Resolve once live: a message published after this resolves reaches the subscription. */
  subscribe(request: SubscribeRequest, deliver: DeliverFn): Promise<TransportSubscription>;
  health(): Promise<{ ok: boolean; details?: Record<string, unknown> }>;
  /** Release connections. Called once, after every subscription was stopped and drained. */
  close(): Promise<void>;
  readonly replies?: ReplyTransport;
  /** In-process transports only: carry bodies as JSON text or by reference instead of bytes. */
  readonly inProcessBodies?: InProcessBodies;
  /**
   * The transport writes a JSON body from `OutgoingEnvelope.text` whenever it is set: core then
   * leaves `body` empty for such envelopes instead of encoding the text to UTF-8 bytes nobody
   * reads (Redis: ~0.5 µs and ~400 bytes of garbage per publish).
   */
  readonly writesText?: boolean;
  /**
   * The broker's largest message (the driver's `maxMessageBytes` option): core refuses a publish
   * holding a bigger body with INVALID_ARGUMENT before the transport sees it.
   */
  readonly messageSizeLimit?: MessageSizeLimit;
  /**
   * Broker-side state for `QueueManager.inspect()`: every (type, group) the broker can list, plus
   * `query.groups`, plus the dead-letter types in `query.deadLetterTypes` and any the broker lists.
   * Cheap enough to poll every 2 s. A transport without it makes inspect() UNSUPPORTED.
   */
  inspect?(query: TransportInspectQuery): Promise<TransportInspection>;
  /**
   * Create `group` on `type` without consuming from it: from now on it receives every publish of
   * `type` and keeps it until taken (how dead letters stay at rest with no consumer). Idempotent.
   * Returning nothing means done synchronously (in-process): consume then reaches `subscribe` in
   * the same turn, as it did before dead letters were kept.
   */
  ensureGroup?(type: string, group: string): Promise<void> | void;
  /** Up to `limit` messages waiting for `group` on `type`, oldest first, without taking them. */
  peek?(type: string, group: string, limit: number): Promise<Envelope[]>;
}

export interface TransportInspectQuery extends InspectQuery {
  /** Dead-letter types to report even if the broker cannot list them (those the manager knows). */
  readonly deadLetterTypes: readonly string[];
}
