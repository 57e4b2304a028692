import type { Delivery, Envelope } from '@plugmq/core/driver';
import { DONE, type Slot, UNDONE } from './offset-tracker.js';

/** What a delivery settles through: its subscription (subscription.ts). */
export interface DeliverySubscription {
  storeRetry(envelope: Envelope, delayMs: number): Promise<void>;
  settled(topic: string, partition: number, slot: Slot): void;
}

/**
 * One delivered message. A class rather than closures: one allocation per message, on the
 * consumer's hottest path. Core calls exactly one of ack/retry/release; each reports the
 * settlement to the subscription itself, so the hand-over needs no promise per message.
 */
export class KafkaDelivery implements Delivery {
  constructor(
    readonly envelope: Envelope,
    private readonly slot: Slot,
    private readonly subscription: DeliverySubscription,
  ) {}

  /** Synchronous, as core allows: an async one cost a promise here and one in core per message. */
  ack(): void {
    this.slot.state = DONE;
    this.settled();
  }

  /** Settled whether the retry was stored or not: one that was not is read again (UNDONE). */
  async retry(delayMs: number): Promise<void> {
    try {
      await this.subscription.storeRetry(this.envelope, delayMs);
      this.slot.state = DONE;
    } finally {
      this.settled();
    }
  }

  release(): void {
    this.slot.state = UNDONE;
    this.settled();
  }

  /** Also for a fetched record never handed to core (stop). */
  settled(): void {
    this.subscription.settled(this.slot.topic, this.slot.partition, this.slot);
  }
}
