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
  /** Hands an unstarted entry back to the group, attempt unchanged (see the subscription). */
  giveBack(stream: StreamRef, id: string, envelope: Envelope): Promise<void>;
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
    const handBack = this.subscription.giveBack(this.stream, this.id, this.envelope);
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
