import type { Delivery, Envelope } from '@plugmq/core/driver';
import { PlugmqError } from '@plugmq/core/driver';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { AckEntry, AckWindow } from './ack-window.js';

/** The queue a delivery came from: a retry goes back to it (its own partition, when partitioned). */
export interface DeliverySlot {
  readonly queue: string;
}

/** The subscription a delivery belongs to, as the delivery sees it. */
export interface DeliveryOwner {
  /** True while a partitioned subscription stops: a released message stays unacked (see stop()). */
  readonly holding: boolean;
  /** Called once per delivery when it is acked, released or retried. */
  settled(channel: Channel): void;
  retryCopy(envelope: Envelope, queue: string, delayMs: number): Promise<void>;
}

function closedError(): PlugmqError {
  return new PlugmqError('CLOSED', 'the RabbitMQ channel of this delivery closed; the broker redelivers it');
}

/**
 * One delivered message. A class rather than closures: one object per message on the hot path.
 * `ack` and `release` complete synchronously (the ack window only queues the frame), so they
 * return nothing, which core accepts.
 */
export class RabbitDelivery implements Delivery, AckEntry {
  ackState: 0 | 1 | 2 = 0;
  private done = false;

  constructor(
    readonly envelope: Envelope,
    readonly message: ConsumeMessage,
    private readonly channel: Channel,
    private readonly window: AckWindow,
    private readonly slot: DeliverySlot,
    private readonly owner: DeliveryOwner,
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
      await this.owner.retryCopy(this.envelope, this.slot.queue, delayMs);
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
      else if (!this.owner.holding) this.window.nack(this);
    } catch {
      throw closedError();
    } finally {
      // After the frame is queued: a stopping subscription may close its channel now.
      this.owner.settled(this.channel);
    }
  }
}

export function safely(action: () => void): void {
  try {
    action();
  } catch {
    // The channel closed: the broker requeues the message itself.
  }
}
