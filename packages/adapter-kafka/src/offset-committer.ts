import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import type { GroupMember } from './connection.js';
import type { PartitionTracker } from './offset-tracker.js';

/** Settles within this window share one offset commit request. */
const COMMIT_DELAY_MS = 20;

/**
 * Commits every partition whose committable offset moved, in one request, a few ms after a
 * settle; one commit at a time, and one more after it if settles came in meanwhile.
 */
export class OffsetCommitter {
  private timer: NodeJS.Timeout | undefined;
  private committing = false;
  private again = false;

  constructor(
    /** Partition trackers by `<partition>:<topic>` (the subscription owns the map). */
    private readonly trackers: ReadonlyMap<string, PartitionTracker>,
    private readonly member: () => GroupMember | undefined,
    private readonly logger: Logger,
    private readonly group: string,
  ) {}

  schedule(): void {
    if (this.timer || this.committing) {
      this.again = true;
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.commit();
    }, COMMIT_DELAY_MS);
  }

  /** The last commit, when stopping: waits for one in flight, then commits what is left now. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.committing) await new Promise((resolve) => setTimeout(resolve, 10));
    await this.commit();
  }

  private async commit(): Promise<void> {
    const member = this.member();
    if (!member) return;
    const offsets: { topic: string; partition: number; offset: number; tracker: PartitionTracker }[] = [];
    for (const [id, tracker] of this.trackers) {
      const offset = tracker.committable();
      if (offset === undefined) continue;
      const colon = id.indexOf(':');
      offsets.push({ topic: id.slice(colon + 1), partition: Number(id.slice(0, colon)), offset, tracker });
    }
    if (offsets.length === 0) return;
    this.committing = true;
    this.again = false;
    try {
      await member.commit(offsets);
      for (const entry of offsets) entry.tracker.committed = Math.max(entry.tracker.committed, entry.offset);
    } catch (error) {
      // The partition may have moved (rebalance) or the broker is away: those messages are
      // delivered again to whoever reads the partition next (at least once).
      this.logger.warn(
        { group: this.group, err: redactCredentials(describeError(error)) },
        'plugmq: kafka offset commit failed; those messages may be delivered again',
      );
    } finally {
      this.committing = false;
      if (this.again) this.schedule();
    }
  }
}
