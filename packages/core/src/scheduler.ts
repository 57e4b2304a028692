import type { Delivery } from './transport.js';

interface Pending {
  readonly delivery: Delivery;
  /** Undefined for a delivery handed over with `enqueue`: nobody waits for it. */
  readonly resolve: (() => void) | undefined;
}

/**
 * Runs at most `concurrency` deliveries at once and never two of the same key at once, so
 * same-key messages keep their order even with concurrency > 1. Written once for every driver.
 */
export class DeliveryScheduler {
  private running = 0;
  private readonly pending: Pending[] = [];
  private readonly busyKeys = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private paused = false;

  constructor(
    private readonly concurrency: number,
    private readonly run: (delivery: Delivery) => Promise<void>,
    /** false for batch subscriptions: same-key messages share a batch, whose order keeps theirs. */
    private readonly serialKeys = true,
  ) {}

  get inFlight(): number {
    return this.running;
  }

  /** Resolves when the delivery has been handled and settled. */
  submit(delivery: Delivery): Promise<void> {
    if (this.startsNow(delivery)) return this.start(delivery);
    return new Promise<void>((resolve) => this.pending.push({ delivery, resolve }));
  }

  /**
   * `submit` for a caller that does not wait for the result: a delivery that has to wait for a
   * free slot costs no promise, and starting it no microtask (most of them wait at concurrency > 1,
   * where the transport reads ahead).
   */
  enqueue(delivery: Delivery): void {
    if (this.startsNow(delivery)) {
      void this.start(delivery);
      return;
    }
    this.pending.push({ delivery, resolve: undefined });
  }

  /** Whether a delivery submitted now starts at once (a slot free, nothing queued, its key idle). */
  private startsNow(delivery: Delivery): boolean {
    const key = this.serialKeys ? delivery.envelope.key : undefined;
    return (
      !this.paused &&
      this.pending.length === 0 &&
      this.running < this.concurrency &&
      (key === undefined || !this.busyKeys.has(key))
    );
  }

  /**
   * Starts nothing more: what is submitted or pending waits for `takePending`. Closing needs this
   * while the transport stops, or a handler finishing meanwhile would start the next message.
   */
  pause(): void {
    this.paused = true;
  }

  /** Removes every delivery that has not started, for the caller to hand back. */
  takePending(): Delivery[] {
    const taken = this.pending.splice(0, this.pending.length);
    for (const entry of taken) entry.resolve?.();
    return taken.map((entry) => entry.delivery);
  }

  /** Resolves when nothing runs. */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private start(delivery: Delivery): Promise<void> {
    const key = this.serialKeys ? delivery.envelope.key : undefined;
    this.running++;
    if (key !== undefined) this.busyKeys.add(key);
    if (key === undefined) return this.run(delivery).then(this.finishUnkeyed, this.finishUnkeyed);
    const finish = () => {
      this.busyKeys.delete(key);
      this.finishUnkeyed();
    };
    return this.run(delivery).then(finish, finish);
  }

  /** One bound function for every unkeyed delivery: no closure per message on the hot path. */
  private readonly finishUnkeyed = (): void => {
    this.running--;
    if (this.pending.length > 0) this.startNext();
    if (this.running === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  };

  private startNext(): void {
    if (this.paused) return;
    for (let i = 0; i < this.pending.length && this.running < this.concurrency; ) {
      const entry = this.pending[i]!;
      const key = this.serialKeys ? entry.delivery.envelope.key : undefined;
      if (key !== undefined && this.busyKeys.has(key)) {
        i++;
        continue;
      }
      // shift() for the head (the usual case): splice allocates an array per call.
      if (i === 0) this.pending.shift();
      else this.pending.splice(i, 1);
      const started = this.start(entry.delivery);
      if (entry.resolve !== undefined) started.then(entry.resolve, entry.resolve);
    }
  }
}
