import {
  type DeliverFn,
  type Envelope,
  type Logger,
  PlugmqError,
  redactCredentials,
  type SubscribeRequest,
  type TransportSubscription,
} from '@plugmq/core/driver';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { AckWindow } from './ack-window.js';
import type { ConnectionManager, ConnectionUser } from './connection.js';
import { pause } from './deadline.js';
import { RabbitDelivery, safely } from './delivery.js';
import type { QueueType } from './options.js';
import { type BalancedSlot, STALL_MS } from './partition-balance.js';
import { declareQueue, partitionMismatch, partitionQueueName } from './partitions.js';
import { errorText, isHomeNodeDown, type QueueStatus } from './queue-status.js';
import { groupQueueName, type Topology } from './topology.js';
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
  /** 0, or the partition queues of each (group, type), each with one active consumer (partitions.ts). */
  readonly partitions: number;
  /** Where each queue's state is reported, for publishes of its type. */
  readonly status: QueueStatus;
  /** Sends a copy with attempt + 1 to this group's queue only, after `delayMs`; resolves once confirmed. */
  retry(envelope: Envelope, queue: string, delayMs: number): Promise<void>;
}

const RESUBSCRIBE_DELAY_MS = 500;
const QUEUE_RETRY_MAX_MS = 5_000;
let sequence = 0;

/** One (group, type) queue of a subscription and its consumer on the subscription's channel. */
interface Slot extends BalancedSlot {
  readonly key: string;
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
  private readonly partitioned: boolean;
  /** Handing the partition over: see handOver(). */
  private draining = false;

  constructor(
    private readonly request: SubscribeRequest,
    private readonly deliver: DeliverFn,
    private readonly deps: SubscriptionDeps,
    /** One partition of `request.types[0]` only: a PartitionedSubscription's part, on a channel of its own. */
    partition?: number,
  ) {
    const id = ++sequence;
    const { topology } = deps;
    const queues = (type: string) =>
      partition === undefined
        ? [groupQueueName(topology, request.group, type)]
        : [partitionQueueName(topology, request.group, type, partition)];
    this.slots = request.types.flatMap((type) =>
      queues(type).map((queue) => ({
        type,
        queue,
        partition,
        key: `${id}:${queue}`,
        tag: undefined,
        active: false,
        delivered: 0,
        timer: undefined,
        failures: 0,
        lastError: undefined,
      })),
    );
    for (const slot of this.slots) deps.status.set(slot.key, slot.type, slot.queue, 'pending');
    this.partitioned = partition !== undefined;
  }

  /** Its queues, for the balancer. */
  get queues(): readonly BalancedSlot[] {
    return this.slots;
  }

  /**
   * Hands its partition over to the group's next consumer (PartitionBalancer): what arrives from
   * now on is held, and once the running handlers settled the channel closes, so RabbitMQ
   * requeues in place what it had sent here before it makes the next consumer active, which then
   * continues in order. The channel opens again after a pause, its consumer then at the back of
   * the queue's line.
   */
  handOver(): boolean {
    if (!this.partitioned || this.stopping || this.draining || !this.live()) return false;
    this.draining = true;
    if (this.unsettled === 0) this.drained();
    return true;
  }

  /** Deliveries handed to core and not yet settled. */
  get inFlight(): number {
    return this.unsettled;
  }

  /**
   * Consumes the partition again on a new channel: its consumer stopped receiving although the
   * queue has ready messages and nothing here is unsettled (PartitionBalancer's stall watch).
   */
  recover(ready: number): boolean {
    if (!this.partitioned || this.stopping || this.draining || this.unsettled > 0 || !this.live())
      return false;
    this.deps.logger.warn(
      { group: this.request.group, queue: this.slots[0]?.queue, ready },
      `plugmq: a partition queue has ready messages but its consumer received none for ${STALL_MS / 1000} s; consuming it again on a new channel`,
    );
    this.drained();
    return true;
  }

  private drained(): void {
    const connection = this.connection;
    this.draining = false;
    this.closeChannel();
    for (const slot of this.slots) this.unattach(slot);
    if (connection) this.retryLater(connection);
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
    this.draining = false;
    for (const slot of this.slots) this.unattach(slot);
  }

  /**
   * Partitioned, stop() cancels nothing: RabbitMQ would make another consumer active at once,
   * which could start a key's next message while this one still runs the previous. What arrives
   * is held unacked; closing the channel once handlers settled hands it back in queue order.
   */
  get holding(): boolean {
    return (this.stopping || this.draining) && this.partitioned;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.deps.connections.release(this);
    await this.setup?.catch(() => {});
    const channel = this.channel;
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      if (channel && slot.tag !== undefined && !this.holding) {
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
        await declareQueue(declaring, this.deps, this.request.group, slot.type, slot.partition);
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
      slot.active = false;
      if (slot.failures > 0) {
        this.deps.logger.info({ group: this.request.group, queue: slot.queue }, 'plugmq: consuming again');
      }
      slot.failures = 0;
      slot.lastError = undefined;
      this.deps.status.set(slot.key, slot.type, slot.queue, 'live');
    } catch (error) {
      if (this.stopping) return;
      slot.lastError = partitionMismatch(error, slot.type, this.deps.partitions) ?? error;
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
    if (this.stopping || this.draining || this.channel !== channel) {
      // Arrived between stop() and cancel-ok: back to the queue, no attempt counted. Held while
      // partitioned: a nack would come straight back to this consumer, still the active one.
      if (!this.holding) safely(() => channel.nack(message, false, true));
      return;
    }
    const window = this.windows.get(channel);
    if (!window) return;
    this.unsettled++;
    slot.active = true;
    slot.delivered++;
    const delivery = new RabbitDelivery(
      envelopeFromMessage(message, slot.type),
      message,
      channel,
      window,
      slot,
      this,
    );
    window.add(delivery);
    this.deliver.submit(delivery); // settlement comes back through the delivery itself
  }

  /** Called once per delivery when it is acked, released or retried. */
  settled(channel: Channel): void {
    this.unsettled--;
    if (this.unsettled > 0 || this.channel !== channel) return;
    if (this.stopping) this.closeChannel();
    else if (this.draining) this.drained();
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
    this.draining = false;
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
