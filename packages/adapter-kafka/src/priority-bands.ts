import type { FetchedBatch } from './connection.js';
import { bandTopics, priorityBand } from './topology.js';

/** A partition paused because a higher band had records waiting, and how to resume it. */
interface Parked {
  readonly band: number;
  readonly resume: () => void;
}

/**
 * The `priorityLevels` side of one subscription: fetched records wait here, one queue per band,
 * and core gets at most `concurrency` unsettled ones, always from the highest band waiting.
 * Core's scheduler runs what it is handed first come first served, so handing it more than it
 * can run at once would let a low record queued there overtake a high one fetched a moment later.
 *
 * Band topics are separate partitions fetched independently, so the order is strict only among
 * records already fetched: a record handed to core is not overtaken by one fetched after it.
 * While a higher band has records waiting, a lower band's partition that delivered a batch is
 * paused (its records stay in the log, not in memory) until no higher band waits any more.
 */
export class PriorityBands<T> {
  private readonly bandOfTopic = new Map<string, number>();
  private readonly waiting: T[][] = [];
  private count = 0;
  private handed = 0;
  private closed = false;
  private readonly parked = new Map<string, Parked>();

  constructor(
    types: readonly string[],
    private readonly levels: number,
    private readonly concurrency: number,
    /** Hands one record to core; resolves once core settled it. */
    private readonly send: (item: T) => Promise<void>,
  ) {
    for (let band = 0; band < levels; band++) this.waiting.push([]);
    for (const type of types) {
      this.bandOfTopic.set(type, 0);
      let band = 0;
      for (const topic of bandTopics(type, levels)) this.bandOfTopic.set(topic, ++band);
    }
  }

  /** The band topics (1 and up) a subscription reads besides its types' topics. */
  topics(): string[] {
    return [...this.bandOfTopic.entries()].filter(([, band]) => band > 0).map(([topic]) => topic);
  }

  /** True for a type's topic or one of its band topics (not a retry topic). */
  isBandTopic(topic: string): boolean {
    return this.bandOfTopic.has(topic);
  }

  /** A band topic's band; a retry topic's record ranks by its own priority. */
  bandOf(topic: string, priority: number | undefined): number {
    return this.bandOfTopic.get(topic) ?? priorityBand(priority, this.levels);
  }

  push(item: T, band: number): void {
    if (this.closed) return;
    this.waiting[band]!.push(item);
    this.count++;
    this.pump();
  }

  /**
   * After a band topic's batch was queued: pauses its partition while a higher band waits, so
   * a busy high band does not fill the prefetch (and memory) with low records.
   */
  park(batch: FetchedBatch, band: number): void {
    const id = `${batch.partition}:${batch.topic}`;
    if (this.closed || this.parked.has(id) || this.highest() <= band) return;
    this.parked.set(id, { band, resume: batch.pause() });
  }

  /** Stops handing out; returns what waited, for the subscription to hand back. */
  clear(): T[] {
    this.closed = true;
    this.parked.clear();
    const left = this.waiting.flat();
    for (const queue of this.waiting) queue.length = 0;
    this.count = 0;
    return left;
  }

  private highest(): number {
    if (this.count === 0) return -1;
    for (let band = this.levels - 1; band >= 0; band--) if (this.waiting[band]!.length > 0) return band;
    return -1;
  }

  private pump(): void {
    while (!this.closed && this.handed < this.concurrency && this.count > 0) {
      const item = this.waiting[this.highest()]!.shift() as T;
      this.count--;
      this.handed++;
      void this.send(item).finally(() => {
        this.handed--;
        this.pump();
      });
    }
    if (this.parked.size === 0) return;
    const highest = this.highest();
    for (const [id, parked] of this.parked) {
      if (parked.band < highest) continue;
      this.parked.delete(id);
      parked.resume();
    }
  }
}
