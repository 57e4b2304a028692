export const PENDING = 0;
export const DONE = 1;
/** Released, or its retry could not be stored: must be read again, so never committed past. */
export const UNDONE = 2;

export interface Slot {
  readonly offset: number;
  state: number;
  readonly tracker: PartitionTracker;
  readonly topic: string;
  readonly partition: number;
}

/**
 * The messages of one partition handed to core and not yet committed, in offset order. The
 * committable offset is the first one not done: a message is committed only when it and every
 * earlier message of the partition are settled, whatever order handlers finish in.
 */
export class PartitionTracker {
  private slots: Slot[] = [];

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  private head = 0;
  /** The offset last committed (the next to read), or -1. */
  committed = -1;
  /** The offset after the last dispatched message, or -1 before the first. */
  nextFetch = -1;

  dispatch(offset: number): Slot {
    const slot: Slot = {
      offset,
      state: PENDING,
      tracker: this,
      topic: this.topic,
      partition: this.partition,
    };
    this.slots.push(slot);
    this.nextFetch = offset + 1;
    return slot;
  }

  /** The offset to commit now, or undefined when it would not move forward. */
  committable(): number | undefined {
    while (this.head < this.slots.length && this.slots[this.head]!.state === DONE) this.head++;
    // Let go of settled slots at once: kept until a thousand had piled up, every slot outlived a
    // few young-generation collections and was promoted (profiled: the largest source of old
    // garbage per message at concurrency 1). At most `prefetch` slots are left to move.
    if (this.head === this.slots.length) {
      this.slots.length = 0;
      this.head = 0;
    } else if (this.head >= 32) {
      this.slots.splice(0, this.head);
      this.head = 0;
    }
    const first = this.slots[this.head];
    const next = first ? first.offset : this.nextFetch;
    return next > this.committed ? next : undefined;
  }

  /** The first message that must be read again (released or failed to retry), if any. */
  firstUndone(): Slot | undefined {
    for (let i = this.head; i < this.slots.length; i++) {
      const slot = this.slots[i]!;
      if (slot.state === UNDONE) return slot;
    }
    return undefined;
  }

  /** After a seek back to `offset`: later slots will be fetched and tracked again. */
  rewind(offset: number): void {
    this.slots = this.slots.slice(this.head).filter((slot) => slot.offset < offset);
    this.head = 0;
    this.nextFetch = offset;
  }

  get unsettled(): number {
    let count = 0;
    for (let i = this.head; i < this.slots.length; i++) if (this.slots[i]!.state === PENDING) count++;
    return count;
  }
}
