/**
 * Small waiting primitives for the consumer loop. Waits are always bounded so the loop can
 * heartbeat and notice a rebalance or a stop while it waits.
 */

/** A counting limit on unsettled deliveries, shared by the partitions of one subscription. */
export class Slots {
  private used = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

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
    const wake = this.waiters.shift();
    wake?.();
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
