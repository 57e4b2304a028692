import {
  type DeliverFn,
  type Delivery,
  type Envelope,
  type Logger,
  PlugmqError,
  redactCredentials,
  type SubscribeRequest,
  type TransportSubscription,
} from '@plugmq/core/driver';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { type AckEntry, AckWindow } from './ack-window.js';
import type { ConnectionManager, ConnectionUser } from './connection.js';
import { pause } from './deadline.js';
import type { QueueType } from './options.js';
import { errorText, isHomeNodeDown, type QueueStatus } from './queue-status.js';
import { declareGroupQueue, groupQueueName, type Topology } from './topology.js';
import { envelopeFromMessage } from './wire.js';

export interface SubscriptionDeps {
  readonly connections: ConnectionManager;
  readonly topology: Topology;
  readonly logger: Logger;
  /** Unacknowledged deliveries per queue. */
  readonly prefetch: number;
  /** `x-max-length` of group queues, if any. */
  readonly maxLength: number | undefined;
  readonly queueType: QueueType;
  /** Where each queue's state is reported, for publishes of its type. */
  readonly status: QueueStatus;
  /** Sends a copy with attempt + 1 to this group's queue only, after `delayMs`; resolves once confirmed. */
  retry(envelope: Envelope, queue: string, delayMs: number): Promise<void>;
}

const RESUBSCRIBE_DELAY_MS = 500;
const QUEUE_RETRY_MAX_MS = 5_000;
let sequence = 0;

function closedError(): PlugmqError {
  return new PlugmqError('CLOSED', 'the RabbitMQ channel of this delivery closed; the broker redelivers it');
}

/** One (group, type) queue of a subscription and its consumer on the subscription's channel. */
interface Slot {
  readonly type: string;
  readonly queue: string;
  readonly key: string;
  tag: string | undefined;
  timer: NodeJS.Timeout | undefined;
  failures: number;
  lastError: unknown;
}

/**
 * One subscription: a channel of its own (so its prefetch and its failures are its own), one
 * consumer per (group, type) queue, manual acks. Each queue is declared on a channel of its own
 * and consumed apart: on a cluster, a queue whose node is down is retried alone while the
 * others keep consuming. It re-subscribes on every new connection and after a channel-level
 * error, until stopped.
 */
export class RabbitSubscription implements ConnectionUser, TransportSubscription {
  private channel: Channel | undefined;
  /** Ack coalescing of the current channel. */
  private windows = new WeakMap<Channel, AckWindow>();
  private connection: ChannelModel | undefined;
  private readonly slots: Slot[];
  private stopping = false;
  private unsettled = 0;
  private setup: Promise<void> | undefined;

  constructor(
    private readonly request: SubscribeRequest,
    private readonly deliver: DeliverFn,
    private readonly deps: SubscriptionDeps,
  ) {
    const id = ++sequence;
    this.slots = request.types.map((type) => {
      const queue = groupQueueName(deps.topology, request.group, type);
      return {
        type,
        queue,
        key: `${id}:${queue}`,
        tag: undefined,
        timer: undefined,
        failures: 0,
        lastError: undefined,
      };
    });
    for (const slot of this.slots) deps.status.set(slot.key, slot.type, slot.queue, 'pending');
  }

  /** Resolves once consuming every queue (declared and bound, consumers registered). */
  async start(signal: AbortSignal): Promise<void> {
    try {
      await this.deps.connections.use(this);
      for (;;) {
        const connection = await this.deps.connections.waitUp(signal);
        await this.connected(connection);
        if (this.live()) return;
        // As before clusters: a declaration refused for good (arguments, permissions) fails now.
        const refused = this.slots.find(
          (slot) => slot.tag === undefined && slot.lastError && !isHomeNodeDown(slot.lastError),
        );
        if (refused) throw refused.lastError;
        // Queues that failed are being retried on their own timers; wait for them, not longer than the signal.
        await pause(RESUBSCRIBE_DELAY_MS, signal);
        if (this.live()) return;
        if (signal.aborted) {
          const failed = this.slots.find((slot) => slot.tag === undefined);
          throw new PlugmqError(
            'CONNECTION',
            `cannot consume ${failed?.queue ?? 'the group queues'}: ${errorText(failed?.lastError ?? 'no channel')}`,
            { cause: failed?.lastError },
          );
        }
      }
    } catch (error) {
      this.stopping = true;
      this.deps.connections.release(this);
      this.forgetSlots();
      this.closeChannel();
      throw error;
    }
  }

  connected(connection: ChannelModel): Promise<void> {
    this.connection = connection;
    if (this.stopping) return Promise.resolve();
    this.setup ??= this.subscribe(connection).finally(() => {
      this.setup = undefined;
    });
    this.setup.catch(() => this.retryLater(connection));
    return this.setup;
  }

  disconnected(): void {
    this.connection = undefined;
    for (const slot of this.slots) this.unattach(slot);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.deps.connections.release(this);
    await this.setup?.catch(() => {});
    const channel = this.channel;
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      if (channel && slot.tag !== undefined) {
        try {
          await channel.cancel(slot.tag);
        } catch {
          // The channel is gone: nothing more will be delivered on it anyway.
        }
      }
    }
    this.forgetSlots();
    if (this.unsettled === 0) this.closeChannel();
  }

  private live(): boolean {
    return this.channel !== undefined && this.slots.every((slot) => slot.tag !== undefined);
  }

  private forgetSlots(): void {
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.tag = undefined;
      this.deps.status.delete(slot.key);
    }
  }

  private unattach(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.tag = undefined;
    if (!this.stopping) this.deps.status.set(slot.key, slot.type, slot.queue, 'pending');
  }

  private async subscribe(connection: ChannelModel): Promise<void> {
    if (this.channel) return;
    const channel = await connection.createChannel();
    channel.on('error', (error: unknown) => {
      this.deps.logger.warn(
        { group: this.request.group, err: redactCredentials(String(error)) },
        'plugmq: RabbitMQ consumer channel error',
      );
    });
    channel.on('close', () => this.channelClosed(channel));
    this.windows.set(channel, new AckWindow(channel, this.deps.prefetch > 1));
    try {
      await channel.prefetch(this.deps.prefetch, false);
    } catch (error) {
      channel.close().catch(() => {});
      throw error;
    }
    this.channel = channel;
    for (const slot of this.slots) await this.attach(connection, channel, slot);
  }

  /**
   * Declares one queue on a throw-away channel (a failed declaration closes only that one), then
   * consumes it on the subscription's channel. A failure is retried for this queue alone.
   */
  private async attach(connection: ChannelModel, channel: Channel, slot: Slot): Promise<void> {
    if (this.stopping || this.channel !== channel || slot.tag !== undefined) return;
    try {
      const declaring = await connection.createChannel();
      declaring.on('error', () => {});
      try {
        const { topology, maxLength, queueType } = this.deps;
        await declareGroupQueue(declaring, topology, this.request.group, slot.type, maxLength, queueType);
      } finally {
        declaring.close().catch(() => {});
      }
      if (this.stopping || this.channel !== channel) return;
      const { consumerTag } = await channel.consume(
        slot.queue,
        (message) => this.onMessage(channel, slot, message),
        { noAck: false },
      );
      slot.tag = consumerTag;
      if (slot.failures > 0) {
        this.deps.logger.info({ group: this.request.group, queue: slot.queue }, 'plugmq: consuming again');
      }
      slot.failures = 0;
      slot.lastError = undefined;
      this.deps.status.set(slot.key, slot.type, slot.queue, 'live');
    } catch (error) {
      if (this.stopping) return;
      slot.lastError = error;
      const down = isHomeNodeDown(error);
      this.deps.status.set(slot.key, slot.type, slot.queue, down ? 'down' : 'pending', errorText(error));
      const fields = { group: this.request.group, queue: slot.queue, err: errorText(error) };
      const message = 'plugmq: cannot consume a group queue; retrying it (the other queues go on)';
      // The first failure of a streak is worth a warning; its retries are not.
      if (slot.failures === 0) this.deps.logger.warn(fields, message);
      else this.deps.logger.debug(fields, message);
      this.retrySlot(connection, channel, slot);
    }
  }

  private retrySlot(connection: ChannelModel, channel: Channel, slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    const delay = Math.min(QUEUE_RETRY_MAX_MS, RESUBSCRIBE_DELAY_MS * 2 ** Math.min(slot.failures++, 4));
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.connection !== connection) return;
      this.attach(connection, channel, slot).catch(ignore);
    }, delay).unref();
  }

  private onMessage(channel: Channel, slot: Slot, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted, or its node went down):
      // declare and consume that queue again, alone.
      if (this.stopping || this.channel !== channel) return;
      this.deps.logger.warn(
        { group: this.request.group, queue: slot.queue },
        'plugmq: RabbitMQ cancelled a consumer; re-subscribing',
      );
      this.unattach(slot);
      const connection = this.connection;
      if (connection) this.retrySlot(connection, channel, slot);
      return;
    }
    if (this.stopping || this.channel !== channel) {
      // Arrived between stop() and cancel-ok: back to the queue, no attempt counted.
      safely(() => channel.nack(message, false, true));
      return;
    }
    const window = this.windows.get(channel);
    if (!window) return;
    this.unsettled++;
    const delivery = new RabbitDelivery(
      envelopeFromMessage(message, slot.type),
      message,
      channel,
      window,
      slot.queue,
      this,
    );
    window.add(delivery);
    this.deliver(delivery).catch(ignore);
  }

  /** Called once per delivery when it is acked, released or retried. */
  settled(channel: Channel): void {
    this.unsettled--;
    if (this.stopping && this.unsettled === 0 && this.channel === channel) this.closeChannel();
  }

  retryCopy(envelope: Envelope, queue: string, delayMs: number): Promise<void> {
    return this.deps.retry(envelope, queue, delayMs);
  }

  private closeChannel(): void {
    const channel = this.channel;
    this.channel = undefined;
    if (!channel) return;
    // Acks still coalescing go out before the channel closes (else RabbitMQ would redeliver them).
    this.windows.get(channel)?.flushSafely();
    channel.close().catch(() => {});
  }

  private channelClosed(channel: Channel): void {
    if (this.channel !== channel) return;
    this.channel = undefined;
    for (const slot of this.slots) this.unattach(slot);
    const connection = this.connection;
    if (connection) this.retryLater(connection);
  }

  /** After a channel-level error or a failed setup on a live connection: subscribe again after a pause. */
  private retryLater(connection: ChannelModel): void {
    if (this.stopping) return;
    setTimeout(() => {
      if (this.stopping || this.connection !== connection || this.channel) return;
      this.connected(connection).catch((error: unknown) =>
        this.deps.logger.warn(
          { group: this.request.group, err: redactCredentials(String(error)) },
          'plugmq: re-subscribing failed',
        ),
      );
    }, RESUBSCRIBE_DELAY_MS).unref();
  }
}

function ignore(): void {}

/**
 * One delivered message. A class rather than closures: one object per message on the hot path.
 * `ack` and `release` complete synchronously (the ack window only queues the frame), so they
 * return nothing, which core accepts.
 */
class RabbitDelivery implements Delivery, AckEntry {
  ackState: 0 | 1 | 2 = 0;
  private done = false;

  constructor(
    readonly envelope: Envelope,
    readonly message: ConsumeMessage,
    private readonly channel: Channel,
    private readonly window: AckWindow,
    private readonly queue: string,
    private readonly owner: RabbitSubscription,
  ) {}

  ack(): void {
    this.finish(true);
  }

  release(): void {
    this.finish(false);
  }

  async retry(delayMs: number): Promise<void> {
    if (this.done) return;
    try {
      await this.owner.retryCopy(this.envelope, this.queue, delayMs);
    } catch (error) {
      // The copy was not stored: hand the original back so it is not stuck unacknowledged.
      safely(() => this.finish(false));
      throw error;
    }
    this.finish(true);
  }

  private finish(ack: boolean): void {
    if (this.done) return;
    this.done = true;
    try {
      if (ack) this.window.ack(this);
      else this.window.nack(this);
    } catch {
      throw closedError();
    } finally {
      // After the frame is queued: a stopping subscription may close its channel now.
      this.owner.settled(this.channel);
    }
  }
}

function safely(action: () => void): void {
  try {
    action();
  } catch {
    // The channel closed: the broker requeues the message itself.
  }
}
