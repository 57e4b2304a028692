import {
  DEAD_LETTER_GROUP,
  type DeliverFn,
  type Delivery,
  type Envelope,
  nextAttempt,
} from '@plugmq/core/driver';
import { Deque } from './deque.js';
import { PriorityBuffer } from './priority-buffer.js';

interface SpaceWaiter {
  readonly wake: () => void;
  cancelled: boolean;
}

/** One subscription's side of the channel: how many deliveries it may hold at once. */
export class MemoryConsumer {
  inFlight = 0;
  stopped = false;
  readonly queues: GroupQueue[] = [];

  constructor(
    readonly deliver: DeliverFn,
    readonly prefetch: number,
  ) {}

  /** Bound once: called when core has settled one of this consumer's deliveries. */
  readonly settled = (): void => {
    this.inFlight--;
    this.pumpAll();
  };

  get hasRoom(): boolean {
    return !this.stopped && this.inFlight < this.prefetch;
  }

  pumpAll(): void {
    for (const queue of this.queues) {
      if (!this.hasRoom) return;
      queue.pump();
    }
  }
}

export interface RetryScheduler {
  scheduleRetry(queue: GroupQueue, envelope: Envelope, delayMs: number): void;
}

/**
 * The bounded buffer of one (type, group): competing consumers take from it in turn; a full
 * buffer makes publishers wait instead of dropping.
 */
export class GroupQueue {
  private readonly buffer = new PriorityBuffer<Envelope>();
  private readonly consumers: MemoryConsumer[] = [];
  private readonly spaceWaiters = new Deque<SpaceWaiter>();
  private next = 0;
  private pumping = false;
  private readonly lowWater: number;
  /** Delivered and not settled yet, for inspect(). */
  inFlight = 0;
  /** Waiting for their retry delay, for inspect(). */
  retrying = 0;

  constructor(
    readonly type: string,
    readonly group: string,
    private readonly capacity: number,
    private readonly retries: RetryScheduler,
  ) {
    this.lowWater = Math.floor(capacity / 2);
  }

  get depth(): number {
    return this.buffer.length;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  /**
   * The reserved dead-letter group never holds publishers back: nothing consumes it until a
   * replay, and a full one would stall every consumer that dead-letters into its type.
   */
  get isFull(): boolean {
    return this.buffer.length >= this.capacity && this.group !== DEAD_LETTER_GROUP;
  }

  /** Waiting messages in delivery order, without taking them. */
  waiting(): Iterable<Envelope> {
    return this.buffer;
  }

  /** Resolves when there is room (the caller re-checks: another publisher may have taken it). */
  waitForSpace(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: SpaceWaiter = { wake: resolve, cancelled: false };
      signal.addEventListener(
        'abort',
        () => {
          waiter.cancelled = true;
          reject(signal.reason);
        },
        { once: true },
      );
      this.spaceWaiters.push(waiter);
    });
  }

  enqueue(envelope: Envelope): void {
    this.buffer.push(envelope);
    this.pump();
  }

  /** Messages kept for a group before it existed (startFrom 'earliest'); may exceed capacity once. */
  enqueueHistory(envelopes: Iterable<Envelope>): void {
    for (const envelope of envelopes) this.buffer.push(envelope);
  }

  requeueFront(envelope: Envelope): void {
    this.buffer.unshift(envelope);
    this.pump();
  }

  attach(consumer: MemoryConsumer): void {
    this.consumers.push(consumer);
    consumer.queues.push(this);
    this.pump();
  }

  detach(consumer: MemoryConsumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.buffer.length > 0) {
        const consumer = this.pickConsumer();
        if (!consumer) break;
        const envelope = this.buffer.shift()!;
        if (this.spaceWaiters.length > 0 && this.buffer.length <= this.lowWater) this.wakePublishers();
        consumer.inFlight++;
        this.inFlight++;
        consumer.deliver(new MemoryDelivery(this, envelope)).then(consumer.settled);
      }
    } finally {
      this.pumping = false;
    }
  }

  retry(envelope: Envelope, delayMs: number): void {
    this.inFlight--;
    this.retries.scheduleRetry(this, nextAttempt(envelope), delayMs);
  }

  settledOne(): void {
    this.inFlight--;
  }

  clear(): number {
    const dropped = this.buffer.length;
    this.buffer.clear();
    return dropped;
  }

  private pickConsumer(): MemoryConsumer | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = this.consumers[(this.next + i) % count]!;
      if (consumer.hasRoom) {
        this.next = (this.next + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  /**
   * Publishers wait for the buffer to drain to half before they are woken, all at once: waking one
   * per freed slot would block and wake a publisher for every single message.
   */
  private wakePublishers(): void {
    while (this.spaceWaiters.length > 0) {
      const waiter = this.spaceWaiters.shift()!;
      if (!waiter.cancelled) waiter.wake();
    }
  }
}

class MemoryDelivery implements Delivery {
  constructor(
    private readonly queue: GroupQueue,
    readonly envelope: Envelope,
  ) {}

  ack(): void {
    this.queue.settledOne();
  }

  retry(delayMs: number): void {
    this.queue.retry(this.envelope, delayMs);
  }

  release(): void {
    this.queue.settledOne();
    this.queue.requeueFront(this.envelope);
  }
}
