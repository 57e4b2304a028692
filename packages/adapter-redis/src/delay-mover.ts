import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import type { Scripts } from './scripts.js';
import type { DelayKeys } from './topology.js';
import { FailureStreak } from './transient.js';

/** Entries one PROMOTE call moves at most; a full batch is followed at once by the next. */
const BATCH = 200;

interface Mover {
  readonly keys: DelayKeys;
  refs: number;
  timer: NodeJS.Timeout | undefined;
  /** Local time the timer fires. */
  timerAt: number;
  running: boolean;
  again: boolean;
  /** Logged once per run of failures (an outage would otherwise log every poll). */
  readonly failures: FailureStreak;
}

/**
 * Moves due delayed publishes and retries from their sorted set into their stream, with the
 * PROMOTE script (atomic: with several processes polling, an entry moves exactly once). Only
 * processes that consume a type poll its sets: a delayed message is due for consumers, so one
 * with none is simply moved when a consumer starts. Each mover polls every `delayPollMs`, and
 * sooner for the next due entry it knows of (its own schedules wake it at their due time).
 */
export class DelayMover {
  private readonly movers = new Map<string, Mover>();
  /** Server clock minus local clock, from the last PROMOTE reply: turns due times into local timers. */
  private skewMs = 0;
  private closed = false;

  constructor(
    private readonly scripts: Scripts,
    private readonly pollMs: number,
    private readonly logger: Logger,
    /** On a Cluster a failover's replies (CLUSTERDOWN, …) are ridden through without warning. */
    private readonly cluster = false,
  ) {}

  /** Starts polling `keys` (shared by every subscription of this transport); returns the release. */
  acquire(keys: DelayKeys): () => void {
    let mover = this.movers.get(keys.schedule);
    if (!mover) {
      mover = {
        keys,
        refs: 0,
        timer: undefined,
        timerAt: 0,
        running: false,
        again: false,
        failures: new FailureStreak(this.cluster),
      };
      this.movers.set(keys.schedule, mover);
      this.schedule(mover, 0);
    }
    mover.refs++;
    const owned = mover;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      owned.refs--;
      if (owned.refs === 0) {
        clearTimeout(owned.timer);
        this.movers.delete(owned.keys.schedule);
      }
    };
  }

  /** Something was scheduled for `dueAt` (server ms): make sure its mover, if any, wakes by then. */
  wake(keys: DelayKeys, dueAt: number): void {
    const mover = this.movers.get(keys.schedule);
    if (!mover) return;
    this.schedule(mover, dueAt - this.skewMs - Date.now());
  }

  close(): void {
    this.closed = true;
    for (const mover of this.movers.values()) clearTimeout(mover.timer);
    this.movers.clear();
  }

  private schedule(mover: Mover, inMs: number): void {
    if (this.closed || this.movers.get(mover.keys.schedule) !== mover) return;
    const delay = Math.max(0, Math.min(this.pollMs, inMs));
    const at = Date.now() + delay;
    if (mover.timer !== undefined && mover.timerAt <= at) return;
    clearTimeout(mover.timer);
    mover.timerAt = at;
    mover.timer = setTimeout(() => {
      mover.timer = undefined;
      void this.run(mover);
    }, delay);
    mover.timer.unref();
  }

  private async run(mover: Mover): Promise<void> {
    if (mover.running) {
      mover.again = true;
      return;
    }
    mover.running = true;
    let next = this.pollMs;
    try {
      const { schedule, data, target } = mover.keys;
      const [moved, dueAt, now] = await this.scripts.promote(schedule, data, target, BATCH);
      this.skewMs = now - Date.now();
      mover.failures.succeeded();
      if (moved >= BATCH) next = 0;
      else if (dueAt >= 0) next = dueAt - now;
    } catch (error) {
      if (!this.closed && mover.failures.failed(error)) {
        this.logger.warn(
          { key: mover.keys.schedule, err: redactCredentials(describeError(error)) },
          'plugmq: moving due delayed messages failed; retrying',
        );
      }
    } finally {
      mover.running = false;
    }
    if (mover.again) {
      mover.again = false;
      next = 0;
    }
    this.schedule(mover, next);
  }
}
