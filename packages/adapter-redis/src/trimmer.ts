import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import type { Scripts } from './scripts.js';
import { FailureStreak } from './transient.js';

/**
 * Trims the streams of consumed types every `trimIntervalMs` with the TRIM script: only entries
 * below what every group of the stream has acknowledged go (XTRIM MINID at the lowest of each
 * group's oldest pending entry, or its last-delivered id when none is pending), so trimming never
 * loses an entry a group still has to handle. Streams without groups are left alone.
 */
export class Trimmer {
  private readonly streams = new Map<string, number>();
  private readonly timer: NodeJS.Timeout | undefined;
  private running = false;
  /** One warning per run of failing passes; a Cluster's failover none. */
  private readonly failures: FailureStreak;
  /** Entries removed so far (health details). */
  trimmed = 0;

  constructor(
    private readonly scripts: Scripts,
    intervalMs: number,
    private readonly logger: Logger,
    cluster = false,
  ) {
    this.failures = new FailureStreak(cluster);
    if (intervalMs > 0) {
      this.timer = setInterval(() => void this.trimAll(), intervalMs);
      this.timer.unref();
    }
  }

  acquire(stream: string): () => void {
    this.streams.set(stream, (this.streams.get(stream) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const refs = (this.streams.get(stream) ?? 1) - 1;
      if (refs <= 0) this.streams.delete(stream);
      else this.streams.set(stream, refs);
    };
  }

  /** One pass over every stream; also callable directly (tests, manual maintenance). */
  async trimAll(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let removed = 0;
    let failed = false;
    try {
      for (const stream of [...this.streams.keys()]) {
        try {
          const count = await this.scripts.trim(stream);
          if (count > 0) removed += count;
        } catch (error) {
          failed = true;
          if (this.failures.failed(error)) {
            this.logger.warn(
              { stream, err: redactCredentials(describeError(error)) },
              'plugmq: trimming a stream failed',
            );
          }
        }
      }
      if (!failed) this.failures.succeeded();
    } finally {
      this.running = false;
    }
    this.trimmed += removed;
    return removed;
  }

  close(): void {
    clearInterval(this.timer);
    this.streams.clear();
  }
}
