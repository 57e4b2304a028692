import { randomUUID } from 'node:crypto';
import { PlugmqError, withDeadline } from '@plugmq/core/driver';
import kafkajs, { type Admin } from 'kafkajs';
import type {
  FetchedRecord,
  GroupDescription,
  KafkaInspectClient,
  OffsetRange,
  Watermarks,
} from './connection.js';
import { RETRY } from './kafkajs-errors.js';
import { headersToStrings } from './kafkajs-member.js';
import type { KafkaConfig } from './options.js';
import { retrying } from './retrying.js';

/** Consumer groups `peek` reads through; never reported by `inspect`. */
export const PEEK_GROUP_PREFIX = 'plugmq-peek.';

/** The admin side of `inspect`/`ensureGroup`/`peek` on kafkajs (see inspect.ts for the logic). */
export class KafkajsInspect implements KafkaInspectClient {
  constructor(
    private readonly kafka: InstanceType<typeof kafkajs.Kafka>,
    private readonly admin: Admin,
    private readonly config: KafkaConfig,
    private readonly isRetriable: (error: unknown) => boolean,
  ) {}

  topicNames(): Promise<string[]> {
    return retrying(() => this.admin.listTopics(), this.isRetriable);
  }

  async groupIds(): Promise<string[]> {
    const { groups } = await retrying(() => this.admin.listGroups(), this.isRetriable);
    return groups.map((group) => group.groupId);
  }

  async describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    if (groupIds.length === 0) return [];
    const { groups } = await retrying(() => this.admin.describeGroups([...groupIds]), this.isRetriable);
    return groups.map((group) => ({
      groupId: group.groupId,
      members: group.members.map((member) => {
        // A member of another client or protocol may carry metadata kafkajs cannot read.
        let topics: string[] = [];
        try {
          topics = kafkajs.AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.topics ?? [];
        } catch {}
        return { topics };
      }),
    }));
  }

  async groupOffsets(
    groupId: string,
  ): Promise<{ topic: string; partitions: { partition: number; offset: number }[] }[]> {
    // No topics: one OffsetFetch for every topic the group committed to.
    const entries = await retrying(() => this.admin.fetchOffsets({ groupId }), this.isRetriable);
    return entries.map(({ topic, partitions }) => ({
      topic,
      partitions: partitions.map(({ partition, offset }) => ({ partition, offset: Number(offset) })),
    }));
  }

  async watermarks(topic: string): Promise<Watermarks[]> {
    let offsets: Awaited<ReturnType<Admin['fetchTopicOffsets']>>;
    try {
      offsets = await retrying(() => this.admin.fetchTopicOffsets(topic), this.isRetriable);
    } catch (error) {
      // kafkajs throws a TypeError when the metadata it holds has no partition of the topic (one
      // being deleted, or just created on a cluster whose nodes have not all heard of it yet):
      // nothing to report for it now, rather than failing the whole inspect().
      if (error instanceof TypeError) return [];
      throw error;
    }
    return offsets.map(({ partition, low, high }) => ({ partition, low: Number(low), high: Number(high) }));
  }

  /**
   * kafkajs has no group-less consumer: a member of a fresh group joins (the broker's
   * `group.initial.rebalance.delay.ms`, 3 s by default, is most of the cost), seeks each
   * partition to its range, reads until every range is covered, leaves, and the group is
   * deleted. Nothing is committed, so no real group is touched.
   */
  async readRanges(
    topic: string,
    ranges: readonly OffsetRange[],
    timeoutMs: number,
  ): Promise<{ partition: number; record: FetchedRecord }[]> {
    const wanted = new Map(ranges.filter((range) => range.to > range.from).map((r) => [r.partition, r]));
    if (wanted.size === 0) return [];
    const groupId = `${PEEK_GROUP_PREFIX}${randomUUID()}`;
    const consumer = this.kafka.consumer({
      groupId,
      sessionTimeout: this.config.sessionTimeoutMs,
      heartbeatInterval: this.config.heartbeatIntervalMs,
      maxWaitTimeInMs: Math.min(this.config.maxWaitTimeMs, 100),
      retry: RETRY,
      allowAutoTopicCreation: false,
    });
    const out: { partition: number; record: FetchedRecord }[] = [];
    const pending = new Set(wanted.keys());
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const reading = (async () => {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: false });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const range = wanted.get(batch.partition);
          if (!range || !pending.has(batch.partition)) return;
          for (const message of batch.messages) {
            const offset = Number(message.offset);
            if (offset < range.from || offset >= range.to) continue;
            out.push({
              partition: batch.partition,
              record: {
                offset,
                key: message.key === null || message.key === undefined ? undefined : message.key.toString(),
                value: message.value ?? Buffer.alloc(0),
                headers: headersToStrings(message.headers),
                timestamp: Number(message.timestamp),
              },
            });
          }
          const last = Number(batch.lastOffset());
          if (last >= range.to - 1) pending.delete(batch.partition);
          if (pending.size === 0) finish();
        },
      });
      for (const range of wanted.values()) {
        consumer.seek({ topic, partition: range.partition, offset: String(range.from) });
      }
      await finished;
    })();
    try {
      await withDeadline(
        reading,
        timeoutMs,
        () =>
          new PlugmqError(
            'TIMEOUT',
            `reading ${topic} without a commit took longer than ${timeoutMs} ms (joining a consumer group may wait the broker's group.initial.rebalance.delay.ms)`,
          ),
      );
    } finally {
      finish();
      reading.catch(() => {});
      await consumer.disconnect().catch(() => {});
      await this.admin.deleteGroups([groupId]).catch(() => {});
    }
    return out;
  }
}
