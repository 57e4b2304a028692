import type { Channel, ConsumeMessage } from 'amqplib';

/** A delivery as the window sees it: its message and whether its ack is still to be sent. */
export interface AckEntry {
  readonly message: ConsumeMessage;
  /** 0 running, 1 acked but not yet sent, 2 settled and sent (ack or nack). */
  ackState: 0 | 1 | 2;
}

/**
 * Coalesces the acks of one channel. Deliveries arrive in delivery-tag order; acks made in the
 * same tick are sent together at its end: the longest settled prefix as one `multiple` ack, the
 * settled ones after a still-running delivery one by one (so a slow handler never holds back
 * the others' acks or prefetch slots). With `concurrency` > 1 this turns most acks (one frame and
 * one socket write each) into one per batch. Nacks are sent at once, in order with the acks sent
 * before them, so a `multiple` ack never covers a message still running.
 */
export class AckWindow {
  private entries: AckEntry[] = [];
  private head = 0;
  private scheduled = false;

  /**
   * `coalesce: false` sends each ack at once: with a prefetch of 1 there is never a second ack to
   * share a frame with, and the broker's next delivery waits on this one.
   */
  constructor(
    private readonly channel: Channel,
    private readonly coalesce = true,
  ) {}

  add(entry: AckEntry): void {
    this.entries.push(entry);
  }

  /** Marks an ack; throws (like amqplib) if the channel is already closed. */
  ack(entry: AckEntry): void {
    entry.ackState = 1;
    if (!this.coalesce) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flushSafely());
    }
  }

  /** Sends a nack (requeue) now; pending acks go first so the frames stay in settle order. */
  nack(entry: AckEntry): void {
    this.flush();
    entry.ackState = 2;
    this.channel.nack(entry.message, false, true);
  }

  /** Sends what is pending now (before the channel is closed). */
  flushSafely(): void {
    try {
      this.flush();
    } catch {
      // The channel closed: the broker requeues every unacknowledged message itself.
    }
  }

  private flush(): void {
    this.scheduled = false;
    const entries = this.entries;
    let last: ConsumeMessage | undefined;
    let head = this.head;
    while (head < entries.length && entries[head]!.ackState !== 0) {
      const entry = entries[head]!;
      if (entry.ackState === 1) last = entry.message;
      entry.ackState = 2;
      // Let go of it now: a delivery (and its message's bytes) kept here until the next
      // compaction outlives the young generation, and promoted garbage costs a full GC.
      entries[head] = SETTLED;
      head++;
    }
    if (last) this.channel.ack(last, true);
    for (let i = head; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.ackState === 1) {
        entry.ackState = 2;
        this.channel.ack(entry.message, false);
        entries[i] = SETTLED;
      }
    }
    this.head = head;
    // Drop the settled prefix now and then rather than shifting on every ack.
    if (head > 256 && head * 2 > entries.length) {
      this.entries = entries.slice(head);
      this.head = 0;
    }
  }
}

/** Stands in for a settled delivery the window no longer needs (its ack or nack was sent). */
const SETTLED: AckEntry = { message: undefined as never, ackState: 2 };
