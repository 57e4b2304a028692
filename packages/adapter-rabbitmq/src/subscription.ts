import {
  type DeliverFn,
  type Delivery,
  type Envelope,
  type Logger,
  PlugmqError,
  redactCredentials,
  type SubscribeRequest,
  type TransportSubscription,
} from '@plugmq/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { type AckEntry, AckWindow } from './ack-window.js';
import type { ConnectionManager, ConnectionUser } from './connection.js';
import { envelopeFromMessage } from './envelope-codec.js';
import { declareGroupQueue, type Topology } from './topology.js';

export interface SubscriptionDeps {
  readonly connections: ConnectionManager;
  readonly topology: Topology;
  readonly logger: Logger;
  /** Unacknowledged deliveries per queue. */
  readonly prefetch: number;
  /** `x-max-length` of group queues, if any. */
  readonly maxLength: number | undefined;
  /** Sends a copy with attempt + 1 to this group's queue only, after `delayMs`; resolves once confirmed. */
  retry(envelope: Envelope, queue: string, delayMs: number): Promise<void>;
}

const RESUBSCRIBE_DELAY_MS = 500;

function closedError(): PlugmqError {
  return new PlugmqError('CLOSED', 'the RabbitMQ channel of this delivery closed; the broker redelivers it');
}

/**
 * One subscription: a channel of its own (so its prefetch and its failures are its own), one
 * consumer per (group, type) queue, manual acks. It re-subscribes on every new connection and
 * after a channel-level error, until stopped.
 */
export class RabbitSubscription implements ConnectionUser, TransportSubscription {
  private channel: Channel | undefined;
  /** Ack coalescing of the current channel (and of the one being set up). */
  private windows = new WeakMap<Channel, AckWindow>();
  /** The channel being set up: its first deliveries may arrive before every consumer is registered. */
  private opening: Channel | undefined;
  private connection: ChannelModel | undefined;
  private consumerTags: string[] = [];
  private stopping = false;
  private unsettled = 0;
  private setup: Promise<void> | undefined;

  constructor(
    private readonly request: SubscribeRequest,
    private readonly deliver: DeliverFn,
    private readonly deps: SubscriptionDeps,
  ) {}

  /** Resolves once consuming (queues declared and bound, consumers registered). */
  async start(signal: AbortSignal): Promise<void> {
    try {
      await this.deps.connections.use(this);
      while (!this.channel) {
        const connection = await this.deps.connections.waitUp(signal);
        await this.connected(connection);
      }
    } catch (error) {
      this.stopping = true;
      this.deps.connections.release(this);
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
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.deps.connections.release(this);
    await this.setup?.catch(() => {});
    const channel = this.channel;
    if (channel) {
      for (const tag of this.consumerTags) {
        try {
          await channel.cancel(tag);
        } catch {
          // The channel is gone: nothing more will be delivered on it anyway.
        }
      }
    }
    this.consumerTags = [];
    if (this.unsettled === 0) this.closeChannel();
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
    this.opening = channel;
    try {
      await channel.prefetch(this.deps.prefetch, false);
      const queues: [type: string, queue: string][] = [];
      for (const type of this.request.types) {
        queues.push([
          type,
          await declareGroupQueue(channel, this.deps.topology, this.request.group, type, this.deps.maxLength),
        ]);
      }
      const tags: string[] = [];
      for (const [type, queue] of queues) {
        const { consumerTag } = await channel.consume(
          queue,
          (message) => this.onMessage(channel, type, queue, message),
          { noAck: false },
        );
        tags.push(consumerTag);
      }
      this.channel = channel;
      this.consumerTags = tags;
    } catch (error) {
      channel.close().catch(() => {});
      throw error;
    } finally {
      this.opening = undefined;
    }
  }

  private onMessage(channel: Channel, type: string, queue: string, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted): subscribe again, which re-declares it.
      this.deps.logger.warn(
        { group: this.request.group, queue },
        'plugmq: RabbitMQ cancelled a consumer; re-subscribing',
      );
      channel.close().catch(() => {});
      return;
    }
    if (this.stopping || (this.channel !== channel && this.opening !== channel)) {
      // Arrived between stop() and cancel-ok: back to the queue, no attempt counted.
      safely(() => channel.nack(message, false, true));
      return;
    }
    const window = this.windows.get(channel);
    if (!window) return;
    this.unsettled++;
    const delivery = new RabbitDelivery(
      envelopeFromMessage(message, type),
      message,
      channel,
      window,
      queue,
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
    this.consumerTags = [];
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
