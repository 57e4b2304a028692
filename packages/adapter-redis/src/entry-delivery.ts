import { type Delivery, type Envelope, nextAttempt } from '@plugmq/core/driver';
import { within } from './connection.js';
import type { StreamRef } from './reader.js';

/** What a delivery settles through (the subscription). */
export interface SettleHost {
  readonly stopped: boolean;
  readonly closeLimitMs: number;
  queueAck(stream: StreamRef, id: string): void;
  requeue(stream: StreamRef, id: string, envelope: Envelope, delayMs: number): Promise<void>;
  settled(stream: StreamRef, id: string): void;
  /** A partition's entry handed back: left pending for the partition's next owner. */
  leavePending(stream: StreamRef, id: string): Promise<void>;
}

/**
 * One delivered entry: methods on a prototype rather than closures per message (hot path). Core
 * calls exactly one of ack/retry/release; each settles the entry with the subscription when done.
 */
export class EntryDelivery implements Delivery {
  constructor(
    private readonly subscription: SettleHost,
    private readonly stream: StreamRef,
    private readonly id: string,
    readonly envelope: Envelope,
  ) {}

  /** Settled by the ack batch once Redis confirmed it. */
  ack(): void {
    this.subscription.queueAck(this.stream, this.id);
  }

  retry(delayMs: number): Promise<void> {
    const next = nextAttempt(this.envelope);
    return this.settleAfter(this.subscription.requeue(this.stream, this.id, next, delayMs));
  }

  /** While closing, bounded: with Redis away the entry stays pending and is claimed later. */
  release(): Promise<void> {
    // A partition's entry stays pending: its key's order holds only on its partition's stream.
    const handBack =
      this.stream.keys.partition === undefined
        ? this.subscription.requeue(this.stream, this.id, this.envelope, 0)
        : this.subscription.leavePending(this.stream, this.id);
    return this.settleAfter(
      this.subscription.stopped
        ? within(handBack, this.subscription.closeLimitMs, 'handing back a message')
        : handBack,
    );
  }

  /** Settled whether the requeue worked or not: a failed one leaves the entry pending, reclaimed. */
  private settleAfter(work: Promise<void>): Promise<void> {
    return work.finally(() => this.subscription.settled(this.stream, this.id));
  }
}
