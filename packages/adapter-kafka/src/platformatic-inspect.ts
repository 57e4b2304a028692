import type { Admin, BaseOptions } from '@platformatic/kafka';
import { PlugmqError } from '@plugmq/core/driver';
import type {
  FetchedRecord,
  GroupDescription,
  KafkaInspectClient,
  OffsetRange,
  Watermarks,
} from './connection.js';
import { guardBrokerLookups } from './platformatic-guard.js';
import { toRecords } from './platformatic-records.js';
import { retrying } from './retrying.js';

type Library = typeof import('@platformatic/kafka');

/** ListOffsets timestamps: the first offset still in the log, and the next one to be written. */
const EARLIEST = -2n;
const LATEST = -1n;
const FETCH_MAX_BYTES = 1_048_576;

/**
 * The admin side of `inspect`/`ensureGroup`/`peek` on @platformatic/kafka (inspect.ts has the
 * logic). Unlike kafkajs it can fetch without a group, so `readRanges` joins nothing: it asks each
 * partition's leader for its range directly and commits nothing.
 */
export class PlatformaticInspect implements KafkaInspectClient {
  constructor(
    private readonly lib: Library,
    private readonly base: BaseOptions,
    private readonly admin: Admin,
    private readonly isRetriable: (error: unknown) => boolean,
  ) {}

  topicNames(): Promise<string[]> {
    return retrying(() => this.admin.listTopics(), this.isRetriable);
  }

  async groupIds(): Promise<string[]> {
    const groups = await retrying(() => this.admin.listGroups(), this.isRetriable);
    return [...groups.keys()];
  }

  async describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    if (groupIds.length === 0) return [];
    const described = await retrying(
      () => this.admin.describeGroups({ groups: [...groupIds] }),
      this.isRetriable,
    );
    return [...described.values()].map((group) => ({
      groupId: group.id,
      members: [...group.members.values()].map((member) => ({ topics: member.metadata?.topics ?? [] })),
    }));
  }

  async groupOffsets(
    groupId: string,
  ): Promise<{ topic: string; partitions: { partition: number; offset: number }[] }[]> {
    const groups = await retrying(
      () => this.admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: null }] }),
      this.isRetriable,
    );
    const group = groups.find((entry) => entry.groupId === groupId);
    return (group?.topics ?? []).map((topic) => ({
      topic: topic.name,
      partitions: topic.partitions.map((p) => ({
        partition: p.partitionIndex,
        offset: Number(p.committedOffset),
      })),
    }));
  }

  async watermarks(topic: string): Promise<Watermarks[]> {
    const metadata = await retrying(() => this.admin.metadata({ topics: [topic] }), this.isRetriable);
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
    const at = async (timestamp: bigint) => {
      const partitions = Array.from({ length: count }, (_, partitionIndex) => ({
        partitionIndex,
        timestamp,
      }));
      const listed = await retrying(
        () => this.admin.listOffsets({ topics: [{ name: topic, partitions }] }),
        this.isRetriable,
      );
      const offsets = new Map<number, number>();
      for (const p of listed.find((entry) => entry.name === topic)?.partitions ?? []) {
        offsets.set(p.partitionIndex, Number(p.offset));
      }
      return offsets;
    };
    const [low, high] = await Promise.all([at(EARLIEST), at(LATEST)]);
    return Array.from({ length: count }, (_, partition) => ({
      partition,
      low: low.get(partition) ?? 0,
      high: high.get(partition) ?? 0,
    }));
  }

  async readRanges(
    topic: string,
    ranges: readonly OffsetRange[],
    timeoutMs: number,
  ): Promise<{ partition: number; record: FetchedRecord }[]> {
    const wanted = ranges.filter((range) => range.to > range.from);
    if (wanted.length === 0) return [];
    // A consumer that never joins a group: only its metadata and fetch are used.
    const consumer = guardBrokerLookups(
      this.lib,
      new this.lib.Consumer<string, Buffer, string, string>({
        ...this.base,
        groupId: `plugmq-peek.${process.pid}`,
        autocommit: false,
      }),
    );
    const deadline = Date.now() + timeoutMs;
    const out: { partition: number; record: FetchedRecord }[] = [];
    try {
      const metadata = await consumer.metadata({ topics: [topic] });
      const topicMetadata = metadata.topics.get(topic);
      if (!topicMetadata) return [];
      for (const range of wanted) {
        let next = BigInt(range.from);
        const to = BigInt(range.to);
        while (next < to) {
          if (Date.now() > deadline) {
            throw new PlugmqError(
              'TIMEOUT',
              `reading ${topic} partition ${range.partition} took over ${timeoutMs} ms`,
            );
          }
          const node = topicMetadata.partitions[range.partition]?.leader ?? -1;
          if (node < 0)
            throw new PlugmqError('TIMEOUT', `${topic} partition ${range.partition} has no leader`);
          const response = await consumer.fetch({
            node,
            topics: [
              {
                topicId: topicMetadata.id,
                partitions: [
                  {
                    partition: range.partition,
                    fetchOffset: next,
                    partitionMaxBytes: FETCH_MAX_BYTES,
                    currentLeaderEpoch: -1,
                    lastFetchedEpoch: -1,
                  },
                ],
              },
            ],
            maxWaitTime: 100,
          });
          let progressed = false;
          for (const topicResponse of response.responses) {
            for (const answer of topicResponse.partitions) {
              if (answer.partitionIndex !== range.partition || !answer.records) continue;
              const { records, lastOffset } = toRecords(answer.records, next);
              for (const record of records) {
                if (record.offset < range.to) out.push({ partition: range.partition, record });
              }
              if (lastOffset >= next) {
                next = lastOffset + 1n;
                progressed = true;
              }
            }
          }
          // Nothing more below `to` (compacted away or a marker at the end): the range is read.
          if (!progressed) break;
        }
      }
      return out;
    } finally {
      await consumer.close().catch(() => {});
    }
  }
}
