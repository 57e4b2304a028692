import {
  type Envelope,
  LinkedList,
  type ListNode,
  type Logger,
  PlugmqError,
  redactCredentials,
  type TransportPublishContext,
} from '@plugmq/core/driver';
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { ConnectionUser } from './connection.js';
import { type Call, PendingCalls } from './publish-calls.js';

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

/** Listed in publish order while unconfirmed (the list's links allocate nothing per publish). */
interface Item extends ListNode {
  /** The message id: basic.return names only that. */
  readonly id: string;
  readonly outgoing: Outgoing;
  readonly call: Call;
  returned: boolean;
  /** Times the channel was lost (or the message returned for 'resend') before a confirm. */
  sends: number;
  /** Broker nacks so far (a full queue with `x-overflow: reject-publish`): paces the next try. */
  nacks: number;
  /** The channel it was last published on; a confirm from an abandoned channel is ignored. */
  on: ConfirmChannel | undefined;
}

/** A channel that only nacks (no length limit configured) is replaced after this long. */
const REFUSING_STALL_MS = 1_000;
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
  /** True while the broker blocks the connection (resource alarm): no confirm can come then. */
  blocked(): boolean;
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
  /** Unconfirmed, oldest first: a Map by id cost ~1.5 µs per publish; only basic.return looks up by id. */
  private readonly inFlight = new LinkedList<Item>();
  /** When the current channel last showed progress: opened, flushed, confirmed, or went from idle to busy. */
  private progressAt = 0;
  /** Channels replaced because they confirmed nothing for `confirmStallMs`; health reports it. */
  private stalls = 0;
  private acked = 0;
  /** The channel nacked since its last progress: it is replaced sooner (see checkStall). */
  private refusing = false;
  private replacedSinceAck = false;
  private nacked = 0;
  private readonly calls = new PendingCalls((now) => this.checkStall(now));
  private closed = false;
  private opening: Promise<void> | undefined;
  private openingOn: ChannelModel | undefined;
  private connection: ChannelModel | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly hooks: PublisherHooks,
    private readonly confirmStallMs: number,
    /** True where group queues have a `maxLength`: a nack then means a full queue. */
    private readonly nacksMeanFull: boolean,
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
      acked: this.acked,
      nacked: this.nacked,
      stalledChannelsReplaced: this.stalls,
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
      if (this.calls.size === 0) this.progressAt = Date.now();
      const call = this.calls.start(context, outgoing.length, resolve, reject);
      for (const entry of outgoing) {
        const item: Item = {
          id: entry.envelope.id,
          outgoing: entry,
          call,
          returned: false,
          sends: 0,
          nacks: 0,
          on: undefined,
          listed: false,
          listPrev: undefined,
          listNext: undefined,
        };
        if (this.channel && !this.draining && this.backlog.length === 0) this.publish(this.channel, item);
        else this.backlog.push(item);
      }
      if (!this.channel) this.calls.arm(call);
    });
  }

  /** Rejects what is still waiting (the manager waited for its publishes before closing). */
  async close(): Promise<void> {
    this.closed = true;
    this.calls.failAll(
      new PlugmqError('CLOSED', 'the RabbitMQ transport closed before the publish was confirmed'),
    );
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
          this.progressAt = Date.now();
          this.draining = false;
          this.pump();
        });
        channel.on('return', (message: Message) => this.returned(message));
        this.channel = channel;
        this.progressAt = Date.now();
        this.refusing = false;
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
    // Their confirm callbacks fail with 'channel closed' and put them back in the backlog.
    this.inFlight.drain();
    if (this.closed) return;
    this.calls.armAll();
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
    item.on = channel;
    this.inFlight.add(item);
    let accepted: boolean;
    try {
      accepted = channel.publish(
        outgoing.exchange,
        outgoing.routingKey,
        outgoing.content,
        outgoing.options,
        (error) => {
          if (item.on !== channel) return;
          if (error) this.nacked++;
          else this.acked++;
          // A nack is progress only where it means a full queue (back-pressure); without a
          // length limit it means the channel lost track of a quorum queue's leader.
          if (!error) this.replacedSinceAck = false;
          if (!error || this.nacksMeanFull) {
            this.progressAt = Date.now();
            this.refusing = false;
          } else this.refusing = true;
          this.confirmed(item, error);
        },
      );
    } catch (error) {
      this.forget(item);
      // The message cannot be encoded (fail now) or the channel closed under us (send again on
      // the next channel; forget this one now so the pump does not spin on it).
      if (error instanceof RangeError || ++item.sends >= MAX_SENDS) {
        this.calls.fail(
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
        this.calls.arm(call);
        const pause = Math.min(1_000, 10 * 2 ** Math.min(item.nacks++, 7));
        setTimeout(() => {
          if (call.settled) return;
          this.backlog.push(item);
          this.pump();
        }, pause).unref();
        return;
      }
      this.calls.fail(
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
      this.calls.fail(call, refusal);
      return;
    }
    if (item.returned) {
      const { outgoing } = item;
      if (outgoing.onReturn === 'reject') {
        this.calls.fail(
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
          (resendError: unknown) => this.calls.fail(call, resendError),
        );
        return;
      }
      this.hooks.unrouted(outgoing.envelope);
    }
    this.calls.confirmOne(call);
  }

  private returned(message: Message): void {
    const id = message.properties.messageId as string | undefined;
    if (id === undefined) return;
    // The oldest one of that id not yet returned: a message published twice is returned twice.
    for (let item = this.inFlight.first(); item; item = item.listNext as Item | undefined) {
      if (item.id === id && !item.returned) {
        item.returned = true;
        return;
      }
    }
  }

  private forget(item: Item): void {
    this.inFlight.delete(item);
    item.on = undefined;
  }

  /**
   * A channel that confirms nothing while publishes wait on it is replaced, and what it held is
   * sent again on the new one (possibly duplicates, never losses). Seen on a 3.10 cluster: after
   * the node leading a quorum queue was SIGKILLed, a channel opened on a survivor nacked every
   * publish to that queue for as long as it lived (thousands in a row), while a fresh channel
   * opened a few seconds later had them confirmed.
   */
  private checkStall(now: number): void {
    const channel = this.channel;
    if (!channel || this.draining || this.calls.size === 0 || this.hooks.blocked()) return;
    const limit = this.refusing ? Math.min(REFUSING_STALL_MS, this.confirmStallMs) : this.confirmStallMs;
    if (now - this.progressAt < limit) return;
    // Once per outage at warn: while the queue has no leader, each new channel may refuse too.
    const level = this.replacedSinceAck ? 'debug' : 'warn';
    this.stalls++;
    this.replacedSinceAck = true;
    this.logger[level](
      { unconfirmed: this.inFlight.size, nacked: this.nacked, stalledMs: now - this.progressAt },
      'plugmq: RabbitMQ refused or left unconfirmed every publish on this channel; sending them again on a new channel',
    );
    this.channel = undefined;
    const waiting = this.inFlight.drain().filter((item) => {
      item.on = undefined;
      return !item.call.settled;
    });
    this.backlog.unshift(...waiting);
    channel.close().catch(() => {});
    const connection = this.connection;
    if (connection) {
      this.openChannel(connection).catch((error: unknown) =>
        this.logger.warn({ err: String(error) }, 'plugmq: replacing the publish channel failed'),
      );
    }
  }
}
