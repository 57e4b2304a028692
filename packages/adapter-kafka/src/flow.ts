/**
 * Small waiting primitives for the consumer loop. Waits are always bounded so the loop can
 * heartbeat and notice a rebalance or a stop while it waits.
 */

/** A counting limit on unsettled deliveries, shared by the partitions of one subscription. */
export class Slots {
  private used = 0;
  private waiters: (() => void)[] = [];
  private wakeSoon: NodeJS.Immediate | undefined;

  /**
   * A waiter is woken once `lowWater` slots are free rather than at every settle: a partition
   * then hands out a few messages per wake-up (its loop, heartbeat check and timer run once per
   * few messages instead of once per message) while core still has deliveries queued.
   */
  constructor(
    private readonly limit: number,
    private readonly lowWater = 1,
  ) {}

  get inUse(): number {
    return this.used;
  }

  tryTake(): boolean {
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }

  give(): void {
    this.used--;
    if (this.waiters.length === 0) return;
    if (this.limit - this.used >= this.lowWater) {
      this.waiters.shift()?.();
      return;
    }
    // Fewer free: wake one anyway once the current burst of settles is over, so a waiter never
    // depends on further settles (handlers may hold their slots for long, or wait on a busy key).
    if (this.wakeSoon !== undefined) return;
    this.wakeSoon = setImmediate(() => {
      this.wakeSoon = undefined;
      if (this.used < this.limit) this.waiters.shift()?.();
    });
  }

  /** Resolves when a slot may be free, or after `ms`. The caller then calls `tryTake` again. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      this.waiters.push(done);
    });
  }
}

/** Counts outstanding work of one batch; `wait` resolves at zero or after `ms`. */
export class Outstanding {
  private count = 0;
  private waiter: (() => void) | undefined;

  get value(): number {
    return this.count;
  }

  add(): void {
    this.count++;
  }

  done(): void {
    if (--this.count === 0) this.waiter?.();
  }

  wait(ms: number): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.waiter = finish;
    });
  }
}
