/**
 * The connection: the seam between the adapter and a Kafka client library. Everything else in the adapter talks
 * to these interfaces only; `kafkajs-client.ts` is the one implementation today. kafkajs 2.2.4 is
 * unmaintained, so a maintained client can replace it by implementing this file's interfaces.
 */
import type { KafkaConfig } from './options.js';

/** A record to produce. The publisher sets `partition` before it is sent (partitioner.ts). */
export interface OutgoingRecord {
  readonly topic: string;
  readonly partition?: number | undefined;
  readonly key?: string | undefined;
  /**
   * Record timestamp: ms since the epoch as a decimal string (the form Kafka clients take it in,
   * so a record can be handed over without a copy); the client's send time when absent.
   */
  readonly timestamp?: string;
  readonly value: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** A fetched record: headers already decoded to strings. */
export interface FetchedRecord {
  readonly offset: number;
  readonly key: string | undefined;
  readonly value: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: number;
}

export interface FetchedBatch {
  readonly topic: string;
  readonly partition: number;
  /**
   * Read once, in order. A client may convert each record only when it is reached: a batch can
   * hold thousands, handed out a few at a time, and records made up front would outlive young
   * garbage collections while they wait (promoted, then collected in the old generation).
   */
  readonly records: Iterable<FetchedRecord>;
  /** Moves the fetch position past `offset` (this is not a commit). */
  markFetched(offset: number): void;
  /** Keeps the membership alive during long work; throws a rebalance error when one started. */
  heartbeat(): Promise<void>;
  /** True when the fetch position of this partition was moved (seek) since the batch was fetched. */
  isStale(): boolean;
  /** Pauses this partition; returns the function that resumes it. */
  pause(): () => void;
}

export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read. */
  readonly offset: number;
}

export interface MemberOptions {
  readonly groupId: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxWaitTimeMs: number;
  /** Batches of different partitions handled at once. */
  readonly partitionsConcurrently: number;
}

/**
 * A group member's options from the driver's config: the same session, rebalance, heartbeat and
 * fetch-wait settings for consumers and delay movers; at most 64 partitions' batches at once.
 */
export function memberOptions(
  config: Pick<
    KafkaConfig,
    'sessionTimeoutMs' | 'rebalanceTimeoutMs' | 'heartbeatIntervalMs' | 'maxWaitTimeMs'
  >,
  groupId: string,
  partitionsConcurrently: number,
): MemberOptions {
  return {
    groupId,
    sessionTimeoutMs: config.sessionTimeoutMs,
    rebalanceTimeoutMs: config.rebalanceTimeoutMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    maxWaitTimeMs: config.maxWaitTimeMs,
    partitionsConcurrently: Math.min(64, partitionsConcurrently),
  };
}

export interface MemberHandlers {
  onBatch(batch: FetchedBatch): Promise<void>;
  /** After every join: the partitions this member now owns, by topic. */
  onJoin(assignment: Readonly<Record<string, readonly number[]>>): void;
  /** The client gave up (it restarts by itself when `restarting`). */
  onCrash(error: unknown, restarting: boolean): void;
}

/** One member of a consumer group. Offsets are committed only through `commit`. */
export interface GroupMember {
  subscribe(topics: readonly string[], fromBeginning: boolean): Promise<void>;
  /** Joins the group and starts fetching; resolves once the first join/sync is done. */
  run(handlers: MemberHandlers): Promise<void>;
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
  seek(offset: TopicPartitionOffset): void;
  /** Stops fetching these topics (or only the given partitions of them). */
  pause(entries: readonly { topic: string; partitions?: readonly number[] }[]): void;
  /** Leaves the group. */
  disconnect(): Promise<void>;
}

/** Where a topic's partitions are led from: `leaders[p]` is the node leading partition p, -1 if none. */
export interface TopicLayout {
  readonly leaders: readonly number[];
}

/** A partition a broker acknowledged in a send. */
export interface AcknowledgedPartition {
  readonly topicName: string;
  readonly partition: number;
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly replicationFactor: number;
}

/** A consumer group as `describeGroups` tells it: the topics each member subscribes to. */
export interface GroupDescription {
  readonly groupId: string;
  readonly members: readonly { readonly topics: readonly string[] }[];
}

/** A partition's first offset still in the log (`low`) and the offset the next record gets (`high`). */
export interface Watermarks {
  readonly partition: number;
  readonly low: number;
  readonly high: number;
}

/** Records `from` ≤ offset < `to` of one partition. */
export interface OffsetRange {
  readonly partition: number;
  readonly from: number;
  readonly to: number;
}

/** What `inspect`, `ensureGroup` and `peek` need beyond consuming and producing (inspect.ts). */
export interface KafkaInspectClient {
  /** Every topic of the cluster. */
  topicNames(): Promise<string[]>;
  /** Every consumer group id of the cluster. */
  groupIds(): Promise<string[]>;
  describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]>;
  /** The group's committed offsets on every topic it committed to (one OffsetFetch). */
  groupOffsets(
    groupId: string,
  ): Promise<{ topic: string; partitions: { partition: number; offset: number }[] }[]>;
  watermarks(topic: string): Promise<Watermarks[]>;
  /**
   * The records in `ranges` of `topic`, read by a throw-away consumer group that commits
   * nothing; rejects with TIMEOUT after `timeoutMs`.
   */
  readRanges(
    topic: string,
    ranges: readonly OffsetRange[],
    timeoutMs: number,
  ): Promise<{ partition: number; record: FetchedRecord }[]>;
}

export interface KafkaClient {
  /** The admin side of inspect, ensureGroup and peek. */
  readonly inspection: KafkaInspectClient;
  /** Connects the admin and producer; rejects (CONNECTION) after the connect timeout. */
  connect(): Promise<void>;
  /** Creates the missing ones among `specs` and waits for their leaders. */
  createTopics(specs: readonly TopicSpec[]): Promise<void>;
  /** Partitions and their end offsets (the offset the next record will get). */
  endOffsets(topic: string): Promise<{ partition: number; offset: number }[]>;
  /** Committed offsets of `groupId` on `topic`; -1 where the group never committed. */
  committedOffsets(groupId: string, topic: string): Promise<{ partition: number; offset: number }[]>;
  deleteGroup(groupId: string): Promise<void>;
  /**
   * Commits offsets for a group with no member, through the admin API (the broker refuses while
   * the group has members, who may own the partitions): a member's last commit that failed in a
   * rebalance is made after it left.
   */
  commitForEmptyGroup(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void>;
  /** True when some consumer group reads `topic` now or has committed offsets on it. */
  hasConsumerGroup(topic: string): Promise<boolean>;
  /** Rejects when no broker answers a metadata request within `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  /** The partitions of `topic` and their leaders, fresh from a broker (retried while the topic is new). */
  topicLayout(topic: string): Promise<TopicLayout>;
  /**
   * Produces records that each carry their partition, with acks from every in-sync replica.
   * Resolves with the partitions the brokers acknowledged; the caller checks that every partition
   * it sent to is among them (kafkajs 2.2.4 can resolve without sending some: kafkajs #1303).
   */
  send(records: readonly OutgoingRecord[]): Promise<readonly AcknowledgedPartition[]>;
  /** Replaces the producer (after an error the idempotent producer cannot recover from). */
  resetProducer(): Promise<void>;
  member(options: MemberOptions): GroupMember;
  /** True when the error means "the group is rebalancing; re-join". */
  isRebalance(error: unknown): boolean;
  /** True when the producer itself is broken (sequence/epoch errors) and must be replaced. */
  isFatalProducerError(error: unknown): boolean;
  /** True when trying again later may succeed (broker away, leader moving, timeouts). */
  isRetriable(error: unknown): boolean;
  close(): Promise<void>;
}
