import type { PlugmqError } from './errors.js';
import { waitForAbort } from './signals.js';
import type { TransportPublishContext } from './transport.js';

/**
 * A publish a transport is waiting on: extend it. Every field but `context` is the watch's own
 * bookkeeping; the links make the watch an intrusive list, so watching a publish allocates
 * nothing (a Set churned by one add and one delete per publish cost ~2% CPU per message).
 */
export class OverdueWatched {
  /** The watch's tick when it was added. */
  overdueTick = 0;
  /** Detaches its deadline once attached. */
  overdueDisarm: (() => void) | undefined = undefined;
  overdueWatched = false;
  overduePrev: OverdueWatched | undefined = undefined;
  overdueNext: OverdueWatched | undefined = undefined;

  constructor(readonly context: TransportPublishContext) {}
}

/** How often the watch looks for overdue publishes (a publish is overdue after one to two of these). */
export const OVERDUE_TICK_MS = 250;

/**
 * The publishes a transport is waiting on, whose deadlines (core's publishTimeoutMs or the
 * caller's signal) are attached only once they are overdue: reading a publish's `signal` arms a
 * timer, which the fast path never needs. One coarse interval serves every publish instead of a
 * clock read per publish. `onExpired` is called once for a publish whose deadline passed while
 * it was still being waited on; `settle` it (or leave it to `onExpired`) to stop watching it.
 */
export class OverdueWatch<T extends OverdueWatched> {
  /** Oldest first: the list is in the order of `add`, so of `overdueTick`. */
  private head: T | undefined;
  private tail: T | undefined;
  private count = 0;
  private tick = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly what: string,
    private readonly onExpired: (item: T, error: PlugmqError) => void,
    tickMs = OVERDUE_TICK_MS,
  ) {
    this.timer = setInterval(() => this.armOlderThan(this.tick++), tickMs);
    this.timer.unref();
  }

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    if (item.overdueWatched) return;
    item.overdueTick = this.tick;
    item.overdueDisarm = undefined;
    item.overdueWatched = true;
    item.overduePrev = this.tail;
    item.overdueNext = undefined;
    if (this.tail) this.tail.overdueNext = item;
    else this.head = item;
    this.tail = item;
    this.count++;
  }

  has(item: T): boolean {
    return item.overdueWatched;
  }

  /** Stops watching `item`; false when it was not watched (already settled or expired). */
  settle(item: T): boolean {
    if (!item.overdueWatched) return false;
    item.overdueWatched = false;
    const { overduePrev: prev, overdueNext: next } = item;
    if (prev) prev.overdueNext = next;
    else this.head = next as T | undefined;
    if (next) next.overduePrev = prev;
    else this.tail = prev as T | undefined;
    item.overduePrev = undefined;
    item.overdueNext = undefined;
    this.count--;
    item.overdueDisarm?.();
    item.overdueDisarm = undefined;
    return true;
  }

  /** Attaches every deadline now, e.g. when the connection dropped and nothing will reply soon. */
  armAll(): void {
    this.armOlderThan(Number.POSITIVE_INFINITY);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private armOlderThan(before: number): void {
    // Ticks only grow along the list: the first item too young ends the walk.
    for (let item = this.head; item && item.overdueTick < before; ) {
      // The next one first: once armed, the item may be unlinked.
      const next = item.overdueNext as T | undefined;
      if (!item.overdueDisarm) this.arm(item);
      item = next;
    }
  }

  private arm(item: T): void {
    const wait = waitForAbort(item.context.signal, this.what);
    item.overdueDisarm = wait.dispose;
    wait.promise.catch((error: PlugmqError) => {
      if (this.settle(item)) this.onExpired(item, error);
    });
  }
}
