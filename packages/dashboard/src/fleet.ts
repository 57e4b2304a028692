import {
  type DeadLetterState,
  type GroupState,
  type Inspection,
  isPlugmqError,
  type Logger,
  type QueueManager,
} from '@plugmq/core';

/** How many polls back the trend of a backlog is read from. */
const TREND_POLLS = 3;

export interface FleetGroup extends GroupState {
  /** Backlog now minus backlog `TREND_POLLS` polls ago (or since the first poll). */
  readonly trend: number;
  /** The backlog rose at the last poll and fell at none of the recent ones. */
  readonly growing: boolean;
}

export interface FleetSnapshot {
  /** false: the driver cannot inspect the broker (`reason` says why); the page says so. */
  readonly supported: boolean;
  readonly reason?: string;
  /** The last poll failed (the previous figures are kept). */
  readonly error?: string;
  readonly intervalMs: number;
  readonly takenAt?: number;
  readonly groups: readonly FleetGroup[];
  readonly deadLetters: readonly DeadLetterState[];
}

/**
 * The fleet view: `queue.inspect()` polled on an interval and cached, so any number of browsers
 * costs the broker one inspection per interval; remembers a few polls to tell a growing backlog.
 */
export class FleetView {
  private readonly history: Map<string, number>[] = [];
  private last: Inspection | undefined;
  private reason: string | undefined;
  private error: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(
    private readonly queue: QueueManager,
    readonly intervalMs: number,
    private readonly logger: Logger,
    /** Groups of the dashboard's own (its dead-letter readers): not part of the fleet. */
    private readonly hidden: ReadonlySet<string> = new Set(),
    /**
     * This process's own (type, group) pairs, looked up even where the broker cannot list groups
     * (RabbitMQ without its management API).
     */
    private readonly known: () => readonly { type: string; group: string }[] = () => [],
  ) {}

  /** The first poll is awaited, so the first snapshot already has figures. */
  async start(): Promise<void> {
    await this.poll();
    if (this.reason !== undefined) return;
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  poll(): Promise<void> {
    this.polling ??= this.read().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async read(): Promise<void> {
    try {
      const groups = this.known();
      const inspection = await this.queue.inspect(groups.length ? { groups } : undefined);
      this.last = inspection;
      this.error = undefined;
      this.history.push(new Map(inspection.groups.map((g) => [key(g), g.backlog])));
      if (this.history.length > TREND_POLLS + 1) this.history.shift();
    } catch (error) {
      if (isPlugmqError(error, 'UNSUPPORTED')) {
        this.reason = error.message;
        this.stop();
        return;
      }
      if (isPlugmqError(error, 'CLOSED')) return this.stop();
      this.error = error instanceof Error ? error.message : String(error);
      this.logger.warn({ err: this.error }, 'plugmq dashboard: inspect() failed');
    }
  }

  snapshot(): FleetSnapshot {
    const base = { intervalMs: this.intervalMs, ...(this.error ? { error: this.error } : {}) };
    if (this.reason !== undefined)
      return { supported: false, reason: this.reason, groups: [], deadLetters: [], ...base };
    if (this.last === undefined) return { supported: true, groups: [], deadLetters: [], ...base };
    const shown = this.last.groups.filter((group) => !this.hidden.has(group.group));
    const groups = shown.map((group) => {
      const series = this.history.map((poll) => poll.get(key(group))).filter((n) => n !== undefined);
      const first = series[0] ?? group.backlog;
      const steps = series.slice(1).map((value, i) => value - (series[i] as number));
      const growing = steps.length > 0 && (steps.at(-1) as number) > 0 && steps.every((step) => step >= 0);
      return { ...group, trend: group.backlog - first, growing };
    });
    return {
      supported: true,
      takenAt: this.last.takenAt,
      groups,
      deadLetters: this.last.deadLetters,
      ...base,
    };
  }
}

function key(group: GroupState): string {
  return `${group.type}\u0000${group.group}`;
}
