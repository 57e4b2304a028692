import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import type { GroupMember, KafkaClient, TopicPartitionOffset } from './connection.js';
import type { PartitionTracker } from './offset-tracker.js';

/** Settles within this window share one offset commit request. */
const COMMIT_DELAY_MS = 20;
/** After a failed commit, the same offsets are committed again after 0.5 s, 1 s, … up to 5 s. */
const COMMIT_RETRY_MS = 500;
const COMMIT_RETRY_MAX_MS = 5_000;

/**
 * Commits every partition whose committable offset moved, in one request, a few ms after a
 * settle; one commit at a time, and one more after it if settles came in meanwhile.
 */
export class OffsetCommitter {
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed commits in a row (0 after a success): the retry delay and whether to warn. */
  private failures = 0;
  private committing = false;
  private again = false;
  /** Set by the last commit (`flush`): nothing is scheduled after it. */
  private closed = false;

  constructor(
    /** Partition trackers by `<partition>:<topic>` (the subscription owns the map). */
    private readonly trackers: ReadonlyMap<string, PartitionTracker>,
    private readonly member: () => GroupMember | undefined,
    /** The client's admin API commits after leaving. */
    private readonly deps: { readonly logger: Logger; readonly client: KafkaClient },
    /** The group as the application names it (in logs) and its id on the broker. */
    private readonly names: { readonly group: string; readonly groupId: string },
  ) {}

  schedule(): void {
    if (this.closed) return;
    if (this.timer || this.committing) {
      this.again = true;
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.commit();
    }, COMMIT_DELAY_MS);
  }

  /**
   * Leaving the group when stopping: the last commit, the member's disconnect, then (through the
   * admin API) what that commit could not, e.g. after a rebalance took the generation away.
   */
  async leave(member: GroupMember, what: string): Promise<void> {
    const uncommitted = await this.flush();
    await member.disconnect().catch((error: unknown) => {
      this.deps.logger.debug({ err: describeError(error) }, `plugmq: kafka ${what} disconnect failed`);
    });
    if (uncommitted.length > 0) await this.commitAfterLeaving(uncommitted);
  }

  /**
   * The last commit, when stopping: waits for one in flight, then commits what is left now.
   * Resolves with what could not be committed (the caller tries again once it left the group).
   */
  async flush(): Promise<TopicPartitionOffset[]> {
    this.closed = true;
    while (this.committing) await new Promise((resolve) => setTimeout(resolve, 10));
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.commit(true);
    return this.pending().map(({ topic, partition, offset }) => ({ topic, partition, offset }));
  }

  /** Offsets settled and not committed yet. */
  private pending(): { topic: string; partition: number; offset: number; tracker: PartitionTracker }[] {
    const offsets: { topic: string; partition: number; offset: number; tracker: PartitionTracker }[] = [];
    for (const [id, tracker] of this.trackers) {
      const offset = tracker.committable();
      if (offset === undefined) continue;
      const colon = id.indexOf(':');
      offsets.push({ topic: id.slice(colon + 1), partition: Number(id.slice(0, colon)), offset, tracker });
    }
    return offsets;
  }

  /**
   * The last commit failed in a rebalance (another member joined or left, e.g. a replay of the
   * dead-letter group): once this member left, a group left with no member takes the offsets
   * through the admin API, where each is still ahead of what is committed. A group with other
   * members refuses; they own the partitions now and read those messages again (at least once).
   */
  async commitAfterLeaving(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const { client } = this.deps;
    const { groupId } = this.names;
    try {
      const ahead: TopicPartitionOffset[] = [];
      for (const topic of new Set(offsets.map((entry) => entry.topic))) {
        const committed = new Map(
          (await client.committedOffsets(groupId, topic)).map((entry) => [entry.partition, entry.offset]),
        );
        for (const entry of offsets) {
          if (entry.topic === topic && entry.offset > (committed.get(entry.partition) ?? -1))
            ahead.push(entry);
        }
      }
      if (ahead.length > 0) await client.commitForEmptyGroup(groupId, ahead);
    } catch (error) {
      this.deps.logger.warn(
        { group: this.names.group, err: redactCredentials(describeError(error)) },
        'plugmq: kafka offset commit failed; those messages may be delivered again',
      );
    }
  }

  private async commit(last = false): Promise<void> {
    const member = this.member();
    if (!member) return;
    const offsets = this.pending();
    if (offsets.length === 0) return;
    this.committing = true;
    this.again = false;
    try {
      await member.commit(offsets);
      for (const entry of offsets) entry.tracker.committed = Math.max(entry.tracker.committed, entry.offset);
      this.failures = 0;
    } catch (error) {
      // The partition may have moved (rebalance) or the broker is away. The last commit of a
      // stopping member is tried once more after it left, so it says nothing yet. Otherwise the
      // same offsets are committed again on a timer: no later settle may come to carry them, and
      // a member that keeps its partitions after the rebalance must not leave them uncommitted
      // (a backlog that never drains, and redelivery after the next restart).
      if (last) return;
      if (this.failures === 0) {
        this.deps.logger.warn(
          { group: this.names.group, err: redactCredentials(describeError(error)) },
          'plugmq: kafka offset commit failed; committing again (meanwhile those messages may be delivered again)',
        );
      }
      this.failures++;
      this.retryLater();
    } finally {
      this.committing = false;
      if (this.again) this.schedule();
    }
  }

  private retryLater(): void {
    if (this.closed || this.retryTimer) return;
    const delay = Math.min(COMMIT_RETRY_MAX_MS, COMMIT_RETRY_MS * 2 ** Math.min(this.failures - 1, 4));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.schedule();
    }, delay);
    this.retryTimer.unref();
  }
}
