import type { PlugmqError } from './errors.js';
import { LinkedList, ListNode } from './linked-list.js';
import { waitForAbort } from './signals.js';
import type { TransportPublishContext } from './transport.js';

/**
 * A publish a transport is waiting on: extend it. Every field but `context` is the watch's own
 * bookkeeping (the watch is a `LinkedList`: watching a publish allocates nothing).
 */
export class OverdueWatched extends ListNode {
  /** The watch's tick when it was added. */
  overdueTick = 0;
  /** Detaches its deadline once attached. */
  overdueDisarm: (() => void) | undefined = undefined;

  constructor(readonly context: TransportPublishContext) {
    super();
  }
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
  /** Oldest first: in the order of `add`, so of `overdueTick`. */
  private readonly waiting = new LinkedList<T>();
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
    return this.waiting.size;
  }

  add(item: T): void {
    if (!this.waiting.add(item)) return;
    item.overdueTick = this.tick;
    item.overdueDisarm = undefined;
  }

  has(item: T): boolean {
    return this.waiting.has(item);
  }

  /** Stops watching `item`; false when it was not watched (already settled or expired). */
  settle(item: T): boolean {
    if (!this.waiting.delete(item)) return false;
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
    for (const item of this.waiting) {
      if (item.overdueTick >= before) break;
      if (!item.overdueDisarm) this.arm(item);
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
