import {
  abortReason,
  type Envelope,
  type Logger,
  PlugmqError,
  redactCredentials,
  type TransportPublishContext,
} from '@plugmq/core';
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { ConnectionUser } from './connection.js';

/** What a basic.return (no queue was bound for the routing key) means for one publish. */
export type OnReturn =
  /** Reject with PUBLISH_FAILED (`mandatory: true`, replies to a requester that is gone). */
  | 'reject'
  /** Resolve, and report the envelope through `hooks.unrouted`. */
  | 'unrouted'
  /** Send again after `onResend` (a wait queue that expired and must be declared again). */
  | 'resend';

export interface Outgoing {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  readonly envelope: Envelope;
  readonly onReturn: OnReturn;
}

/** One `send` call: resolves once every item of it is confirmed; rejects on the first failure. */
interface Call {
  readonly context: TransportPublishContext;
  readonly startedAt: number;
  remaining: number;
  settled: boolean;
  armed: boolean;
  disarm: (() => void) | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

interface Item {
  readonly outgoing: Outgoing;
  readonly call: Call;
  returned: boolean;
  /** Times the channel was lost (or the message returned for 'resend') before a confirm. */
  sends: number;
  /** Broker nacks so far (a full queue with `x-overflow: reject-publish`): paces the next try. */
  nacks: number;
  /** The next in-flight item with the same message id, for matching basic.return. */
  sameId: Item | undefined;
}

/** Unconfirmed publishes older than this start honouring their deadline signal (made lazily by core). */
const ARM_AFTER_MS = 200;
/** A publish that keeps killing the channel (e.g. its exchange was deleted) fails after this many sends. */
const MAX_SENDS = 5;

export interface PublisherHooks {
  unrouted(envelope: Envelope): void;
  /**
   * For a confirmed (or returned) publish: an error to reject it with when a queue it should
   * have reached is known to be unreachable (see QueueStatus), else undefined.
   */
  refusal(outgoing: Outgoing, returned: boolean): Error | undefined;
  /** Before re-sending a returned 'resend' item: declare its wait queue again. */
  resend(outgoing: Outgoing): Promise<void>;
}

/**
 * Publishes on one confirm channel: many publishes in flight at once (never one confirm at a
 * time), the channel's `drain` honoured, every publish mandatory so basic.return tells unrouted
 * messages apart. Publishes that the channel lost before their confirm are sent again on the
 * next channel (at least once); a call's deadline signal is only touched when it waits, so the
 * fast path costs no timer.
 */
export class Publisher implements ConnectionUser {
  private channel: ConfirmChannel | undefined;
  private draining = false;
  private readonly backlog: Item[] = [];
  private readonly inFlight = new Map<string, Item>();
  private readonly calls = new Set<Call>();
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private opening: Promise<void> | undefined;
  private openingOn: ChannelModel | undefined;
  private connection: ChannelModel | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly hooks: PublisherHooks,
  ) {}

  get ready(): boolean {
    return this.channel !== undefined;
  }

  get pending(): number {
    return this.calls.size;
  }

  /** For health(): what waits where. */
  get state(): Record<string, unknown> {
    return {
      channel: this.channel !== undefined,
      opening: this.opening !== undefined,
      draining: this.draining,
      backlog: this.backlog.length,
      unconfirmed: this.inFlight.size,
    };
  }

  async connected(connection: ChannelModel): Promise<void> {
    this.connection = connection;
    await this.openChannel(connection);
  }

  disconnected(): void {
    this.connection = undefined;
  }

  send(outgoing: readonly Outgoing[], context: TransportPublishContext): Promise<void> {
    if (this.closed) return Promise.reject(new PlugmqError('CLOSED', 'the RabbitMQ transport is closed'));
    return new Promise<void>((resolve, reject) => {
      const call: Call = {
        context,
        startedAt: Date.now(),
        remaining: outgoing.length,
        settled: false,
        armed: false,
        disarm: undefined,
        resolve,
        reject,
      };
      this.calls.add(call);
      this.sweeper ??= setInterval(() => this.sweep(), ARM_AFTER_MS).unref();
      for (const entry of outgoing) {
        const item: Item = { outgoing: entry, call, returned: false, sends: 0, nacks: 0, sameId: undefined };
        if (this.channel && !this.draining && this.backlog.length === 0) this.publish(this.channel, item);
        else this.backlog.push(item);
      }
      if (!this.channel) this.arm(call);
    });
  }

  /** Rejects what is still waiting (the manager waited for its publishes before closing). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const call of [...this.calls]) {
      this.fail(
        call,
        new PlugmqError('CLOSED', 'the RabbitMQ transport closed before the publish was confirmed'),
      );
    }
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close().catch(() => {});
  }

  private openChannel(connection: ChannelModel): Promise<void> {
    // An opening on another (lost) connection may never settle: it must not hold this one up.
    if (this.opening && this.openingOn === connection) return this.opening;
    let opening: Promise<void> | undefined;
    opening = (async () => {
      try {
        const channel = await connection.createConfirmChannel();
        if (this.connection !== connection || this.closed) {
          channel.close().catch(() => {});
          return;
        }
        channel.on('error', (error: unknown) => {
          this.logger.warn(
            { err: redactCredentials(String(error)) },
            'plugmq: RabbitMQ publish channel error',
          );
        });
        channel.on('close', () => this.channelClosed(channel));
        channel.on('drain', () => {
          if (this.channel !== channel) return;
          this.draining = false;
          this.pump();
        });
        channel.on('return', (message: Message) => this.returned(message));
        this.channel = channel;
        this.draining = false;
        this.pump();
      } finally {
        if (this.opening === opening) {
          this.opening = undefined;
          this.openingOn = undefined;
        }
      }
    })();
    this.opening = opening;
    this.openingOn = connection;
    return opening;
  }

  private channelClosed(channel: ConfirmChannel): void {
    if (this.channel !== channel) return;
    this.channel = undefined;
    this.inFlight.clear();
    if (this.closed) return;
    for (const call of this.calls) this.arm(call);
    // A channel-level error on a live connection (not a lost connection): open a new channel.
    const connection = this.connection;
    if (connection) {
      setTimeout(() => {
        if (this.connection === connection && !this.channel && !this.closed) {
          this.openChannel(connection).catch((error: unknown) =>
            this.logger.warn({ err: String(error) }, 'plugmq: reopening the publish channel failed'),
          );
        }
      }, 50).unref();
    }
  }

  private pump(): void {
    while (this.channel && !this.draining && this.backlog.length > 0) {
      const item = this.backlog.shift()!;
      if (!item.call.settled) this.publish(this.channel, item);
    }
  }

  private publish(channel: ConfirmChannel, item: Item): void {
    const { outgoing } = item;
    item.returned = false;
    const id = outgoing.envelope.id;
    const previous = this.inFlight.get(id);
    if (previous) {
      let last = previous;
      while (last.sameId) last = last.sameId;
      last.sameId = item;
    } else this.inFlight.set(id, item);
    let accepted: boolean;
    try {
      accepted = channel.publish(
        outgoing.exchange,
        outgoing.routingKey,
        outgoing.content,
        outgoing.options,
        (error) => this.confirmed(item, error),
      );
    } catch (error) {
      this.forget(item);
      // The message cannot be encoded (fail now) or the channel closed under us (send again on
      // the next channel; forget this one now so the pump does not spin on it).
      if (error instanceof RangeError || ++item.sends >= MAX_SENDS) {
        this.fail(
          item.call,
          new PlugmqError('PUBLISH_FAILED', `publish to ${outgoing.envelope.type} failed: ${String(error)}`, {
            cause: error,
          }),
        );
      } else {
        this.backlog.unshift(item);
        this.channelClosed(channel);
      }
      return;
    }
    if (!accepted) this.draining = true;
  }

  private confirmed(item: Item, error: unknown): void {
    this.forget(item);
    const { call } = item;
    if (call.settled) return;
    if (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message === 'channel closed' && !this.closed && ++item.sends < MAX_SENDS) {
        // Not known to be stored: send again on the next channel (possibly a duplicate).
        this.backlog.push(item);
        return;
      }
      if (message === 'message nacked' && !this.closed) {
        // The broker refused to store it, typically a group queue at its `maxLength`: that is
        // back-pressure, so wait and try again until the call's deadline (publishTimeoutMs or
        // the caller's signal) rejects it. Never dropped, never resolved unconfirmed.
        this.arm(call);
        const pause = Math.min(1_000, 10 * 2 ** Math.min(item.nacks++, 7));
        setTimeout(() => {
          if (call.settled) return;
          this.backlog.push(item);
          this.pump();
        }, pause).unref();
        return;
      }
      this.fail(
        call,
        new PlugmqError(
          'PUBLISH_FAILED',
          `RabbitMQ did not confirm the publish to ${item.outgoing.envelope.type}: ${message}`,
        ),
      );
      return;
    }
    const refusal = this.hooks.refusal(item.outgoing, item.returned);
    if (refusal) {
      this.fail(call, refusal);
      return;
    }
    if (item.returned) {
      const { outgoing } = item;
      if (outgoing.onReturn === 'reject') {
        this.fail(
          call,
          new PlugmqError(
            'PUBLISH_FAILED',
            `no queue is bound for ${outgoing.routingKey}: no group consumes ${outgoing.envelope.type} (mandatory)`,
          ),
        );
        return;
      }
      if (outgoing.onReturn === 'resend' && ++item.sends < MAX_SENDS) {
        this.hooks.resend(outgoing).then(
          () => {
            if (this.channel && !this.draining && this.backlog.length === 0) this.publish(this.channel, item);
            else this.backlog.push(item);
          },
          (resendError: unknown) => this.fail(call, resendError),
        );
        return;
      }
      this.hooks.unrouted(outgoing.envelope);
    }
    if (--call.remaining === 0) {
      call.settled = true;
      this.calls.delete(call);
      call.disarm?.();
      call.resolve();
    }
  }

  private returned(message: Message): void {
    const id = message.properties.messageId as string | undefined;
    let item = id === undefined ? undefined : this.inFlight.get(id);
    while (item?.returned) item = item.sameId;
    if (item) item.returned = true;
  }

  private forget(item: Item): void {
    const id = item.outgoing.envelope.id;
    const head = this.inFlight.get(id);
    if (head === item) {
      if (item.sameId) this.inFlight.set(id, item.sameId);
      else this.inFlight.delete(id);
    } else if (head) {
      let previous = head;
      while (previous.sameId && previous.sameId !== item) previous = previous.sameId;
      if (previous.sameId === item) previous.sameId = item.sameId;
    }
    item.sameId = undefined;
  }

  private fail(call: Call, error: unknown): void {
    if (call.settled) return;
    call.settled = true;
    this.calls.delete(call);
    call.disarm?.();
    call.reject(error);
  }

  /** From now on the call honours its deadline signal (publishTimeoutMs or the caller's signal). */
  private arm(call: Call): void {
    if (call.armed || call.settled) return;
    call.armed = true;
    const signal = call.context.signal;
    const onAbort = () => this.fail(call, abortReason(signal, 'publish to RabbitMQ'));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    call.disarm = () => signal.removeEventListener('abort', onAbort);
  }

  private sweep(): void {
    if (this.calls.size === 0) {
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const old = Date.now() - ARM_AFTER_MS;
    // Calls are kept in start order: stop at the first young one.
    for (const call of this.calls) {
      if (call.startedAt > old) break;
      this.arm(call);
    }
  }
}
