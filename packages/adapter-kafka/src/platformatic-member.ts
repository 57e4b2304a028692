import type { Consumer, ConsumerGroupJoinPayload, RecordsBatch } from '@platformatic/kafka';
import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import type {
  FetchedBatch,
  GroupMember,
  MemberHandlers,
  MemberOptions,
  TopicPartitionOffset,
} from './connection.js';
import { isTransient, RebalancingError } from './platformatic-errors.js';
import { idOf, outOfRange, startOffsets, toRecords } from './platformatic-records.js';
import { retrying } from './retrying.js';

const PARTITION_MAX_BYTES = 1_048_576;
/** Back-off after a failed fetch round (broker away, leader moving). */
const FETCH_ERROR_WAIT_MS = 250;

type Id = string;

/**
 * A group member on @platformatic/kafka. The library's Consumer keeps the membership (join,
 * sync, heartbeats, re-joins) and commits; fetching is done here, partition by partition, with
 * the library's low-level `fetch`, because its message stream can neither pause one partition
 * nor seek, and the seam needs both (retry topics sleep per partition; a rewind re-reads a
 * released message).
 */
export class PlatformaticMember implements GroupMember {
  private readonly fromBeginning = new Map<string, boolean>();
  private handlers: MemberHandlers | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Owned partitions (after the last join). */
  private owned = new Set<Id>();
  private readonly topicOf = new Map<Id, { topic: string; partition: number }>();
  /** The next offset to fetch, per owned partition; absent until resolved after a join. */
  private readonly positions = new Map<Id, bigint>();
  /** Bumped on every seek and join: a batch fetched before is stale. */
  private readonly versions = new Map<Id, number>();
  private generation = 0;
  private readonly paused = new Set<Id>();
  private readonly pausedTopics = new Set<string>();
  private wake: (() => void) | undefined;
  private joined: (() => void) | undefined;

  constructor(
    private readonly consumer: Consumer<string, Buffer, string, string>,
    private readonly options: MemberOptions,
    private readonly logger: Logger,
  ) {}

  async subscribe(topics: readonly string[], fromBeginning: boolean): Promise<void> {
    for (const topic of topics) {
      this.fromBeginning.set(topic, fromBeginning);
      this.consumer.topics.track(topic);
    }
  }

  async run(handlers: MemberHandlers): Promise<void> {
    this.handlers = handlers;
    this.consumer.on('consumer:group:join', (payload) => this.onJoin(payload));
    // The library emits 'error' when a re-join it started by itself failed for good (coordinator
    // away for longer than its retries): it then stops heartbeating, so join again from here.
    this.consumer.on('error', (error: unknown) => {
      if (this.stopped) return;
      this.crashed(error);
      void this.rejoin();
    });
    const first = new Promise<void>((resolve) => {
      this.joined = resolve;
    });
    // A topic another process just created may not be in every metadata answer yet.
    await retrying(() => this.consumer.joinGroup(this.groupOptions()), isTransient);
    await first;
    this.loop = this.fetchLoop();
  }

  private groupOptions() {
    return {
      sessionTimeout: this.options.sessionTimeoutMs,
      rebalanceTimeout: this.options.rebalanceTimeoutMs,
      heartbeatInterval: this.options.heartbeatIntervalMs,
    };
  }

  private rejoining = false;

  private async rejoin(): Promise<void> {
    if (this.rejoining) return;
    this.rejoining = true;
    try {
      for (let wait = 500; !this.stopped; wait = Math.min(wait * 2, 5_000)) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (this.stopped) return;
        try {
          await this.consumer.joinGroup(this.groupOptions());
          this.logger.info({ groupId: this.options.groupId }, 'plugmq: kafka consumer re-joined its group');
          return;
        } catch (error) {
          this.logger.warn(
            { groupId: this.options.groupId, err: redactCredentials(describeError(error)) },
            'plugmq: re-joining the kafka group failed; trying again',
          );
        }
      }
    } finally {
      this.rejoining = false;
    }
  }

  /**
   * The subscription forgets what it handed out when told of a crash, so every partition is read
   * again from its committed offset (at least once), as a recreated kafkajs consumer would.
   */
  private crashed(error: unknown): void {
    for (const id of this.owned) this.bump(id);
    this.positions.clear();
    this.handlers?.onCrash(error, true);
    void this.resolvePositions(this.generation).finally(() => this.wake?.());
  }

  private onJoin(payload: ConsumerGroupJoinPayload): void {
    if (this.stopped) return;
    this.generation++;
    const owned = new Set<Id>();
    const byTopic: Record<string, number[]> = {};
    for (const { topic, partitions } of payload.assignments ?? []) {
      byTopic[topic] = [...partitions];
      for (const partition of partitions) {
        const id = idOf(topic, partition);
        owned.add(id);
        this.topicOf.set(id, { topic, partition });
        this.bump(id);
      }
    }
    for (const id of this.owned) {
      if (!owned.has(id)) {
        this.positions.delete(id);
        this.bump(id);
      }
    }
    this.owned = owned;
    this.handlers?.onJoin(byTopic);
    // Partitions read before keep their position (the subscription seeks them where it stopped);
    // new ones start at the committed offset, else where the subscription said.
    void this.resolvePositions(this.generation).finally(() => {
      this.joined?.();
      this.joined = undefined;
      this.wake?.();
    });
  }

  private bump(id: Id): void {
    this.versions.set(id, (this.versions.get(id) ?? 0) + 1);
  }

  private async resolvePositions(generation: number): Promise<void> {
    const missing = new Map<string, number[]>();
    for (const id of this.owned) {
      if (this.positions.has(id)) continue;
      const { topic, partition } = this.topicOf.get(id)!;
      const list = missing.get(topic) ?? [];
      list.push(partition);
      missing.set(topic, list);
    }
    if (missing.size === 0) return;
    for (let wait = 100; !this.stopped && generation === this.generation; wait = Math.min(wait * 2, 2_000)) {
      try {
        const topics = [...missing].map(([topic, partitions]) => ({ topic, partitions }));
        const committed = await this.consumer.listCommittedOffsets({ topics });
        // A partition without a commit starts at the end its topic's subscription asked for:
        // ListOffsets' earliest (-2) or latest (-1) marker.
        const ends = async (fromBeginning: boolean) => {
          const names = [...missing.keys()].filter(
            (t) => Boolean(this.fromBeginning.get(t)) === fromBeginning,
          );
          const timestamp = fromBeginning ? -2n : -1n;
          return names.length === 0 ? new Map() : this.consumer.listOffsets({ topics: names, timestamp });
        };
        const earliest = await ends(true);
        const latest = await ends(false);
        if (generation !== this.generation) return;
        for (const [id, offset] of startOffsets(missing, committed, earliest, latest)) {
          // A seek made meanwhile (start pins, rewinds) wins.
          if (!this.positions.has(id)) this.positions.set(id, offset);
        }
        return;
      } catch (error) {
        this.logger.debug(
          { groupId: this.options.groupId, err: redactCredentials(describeError(error)) },
          'plugmq: reading the start offsets of kafka partitions failed; trying again',
        );
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private fetchable(id: Id): boolean {
    const entry = this.topicOf.get(id);
    if (entry === undefined || !this.positions.has(id)) return false;
    return !this.paused.has(id) && !this.pausedTopics.has(entry.topic);
  }

  private async fetchLoop(): Promise<void> {
    while (!this.stopped) {
      const ids = [...this.owned].filter((id) => this.fetchable(id));
      if (ids.length === 0) {
        await this.idle(1_000);
        continue;
      }
      try {
        await this.fetchRound(ids);
      } catch (error) {
        if (this.stopped) return;
        this.logger.debug(
          { groupId: this.options.groupId, err: redactCredentials(describeError(error)) },
          'plugmq: kafka fetch failed; trying again',
        );
        this.consumer.clearMetadata();
        await this.idle(FETCH_ERROR_WAIT_MS);
      }
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wake === done) self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /** One fetch per partition leader, at once; each answer's batches handed out before the next round. */
  private async fetchRound(ids: Id[]): Promise<void> {
    const topics = [...new Set(ids.map((id) => this.topicOf.get(id)!.topic))];
    const metadata = await this.consumer.metadata({ topics });
    const byLeader = new Map<number, Map<string, { partition: number; id: Id; offset: bigint }[]>>();
    for (const id of ids) {
      const { topic, partition } = this.topicOf.get(id)!;
      const topicMetadata = metadata.topics.get(topic);
      const leader = topicMetadata?.partitions[partition]?.leader ?? -1;
      if (!topicMetadata || leader < 0) continue;
      let topicsOfLeader = byLeader.get(leader);
      if (!topicsOfLeader) {
        topicsOfLeader = new Map();
        byLeader.set(leader, topicsOfLeader);
      }
      const list = topicsOfLeader.get(topicMetadata.id) ?? [];
      list.push({ partition, id, offset: this.positions.get(id)! });
      topicsOfLeader.set(topicMetadata.id, list);
    }
    if (byLeader.size === 0) throw new Error('no leader known for the assigned partitions');
    const topicNames = new Map<string, string>();
    for (const [name, entry] of metadata.topics) topicNames.set(entry.id, name);
    await Promise.all(
      [...byLeader].map(async ([node, topicsOfLeader]) => {
        const requested = new Map<Id, { offset: bigint; version: number; generation: number }>();
        const request = [...topicsOfLeader].map(([topicId, partitions]) => ({
          topicId,
          partitions: partitions.map(({ partition, id, offset }) => {
            requested.set(id, { offset, version: this.versions.get(id) ?? 0, generation: this.generation });
            return {
              partition,
              fetchOffset: offset,
              partitionMaxBytes: PARTITION_MAX_BYTES,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
            };
          }),
        }));
        let response: Awaited<ReturnType<typeof this.consumer.fetch>>;
        try {
          response = await this.consumer.fetch({
            node,
            topics: request,
            maxWaitTime: this.options.maxWaitTimeMs,
          });
        } catch (error) {
          if (!this.resetOutOfRange(error, topicNames, requested)) throw error;
          return;
        }
        const batches: Promise<void>[] = [];
        for (const topicResponse of response.responses) {
          const topic = topicNames.get(topicResponse.topicId);
          if (topic === undefined) continue;
          for (const { partitionIndex, records } of topicResponse.partitions) {
            const id = idOf(topic, partitionIndex);
            const asked = requested.get(id);
            if (!asked || !records || records.length === 0) continue;
            batches.push(this.handBatch(topic, partitionIndex, id, asked, records));
          }
        }
        await Promise.all(batches);
      }),
    );
  }

  /**
   * A position outside the log restarts at its start when it was before it (at least once: the
   * rest of the log is read), else at its end. True when some partition was reset.
   */
  private resetOutOfRange(
    error: unknown,
    topicNames: ReadonlyMap<string, string>,
    requested: ReadonlyMap<Id, { offset: bigint; version: number }>,
  ): boolean {
    const refused = outOfRange(error, topicNames);
    for (const { topic, partition, logStartOffset, highWatermark } of refused) {
      const asked = requested.get(idOf(topic, partition));
      if (!asked || this.versions.get(idOf(topic, partition)) !== asked.version) continue;
      const offset = asked.offset < logStartOffset ? logStartOffset : highWatermark;
      this.logger.warn(
        { groupId: this.options.groupId, topic, partition, from: String(asked.offset), to: String(offset) },
        'plugmq: kafka partition position is outside the log; reading on from its nearest end',
      );
      this.seek({ topic, partition, offset: Number(offset) });
    }
    return refused.length > 0;
  }

  private async handBatch(
    topic: string,
    partition: number,
    id: Id,
    asked: { offset: bigint; version: number; generation: number },
    batches: RecordsBatch[],
  ): Promise<void> {
    const isStale = () => this.versions.get(id) !== asked.version || !this.owned.has(id);
    if (isStale() || !this.fetchable(id) || this.stopped) return;
    const { records, lastOffset } = toRecords(batches, asked.offset);
    if (records.length === 0) {
      // Only transaction markers or records before the position: move past them.
      if (lastOffset >= asked.offset) this.positions.set(id, lastOffset + 1n);
      return;
    }
    const fetched: FetchedBatch = {
      topic,
      partition,
      records,
      markFetched: (offset) => {
        if (!isStale()) this.positions.set(id, BigInt(offset) + 1n);
      },
      heartbeat: async () => {
        // The library heartbeats on its own timer and re-joins by itself; a batch of an older
        // generation must stop (what it handed out stays tracked by the subscription).
        if (this.generation !== asked.generation) throw new RebalancingError();
      },
      isStale,
      pause: () => {
        this.paused.add(id);
        return () => {
          this.paused.delete(id);
          this.wake?.();
        };
      },
    };
    try {
      await this.handlers!.onBatch(fetched);
    } catch (error) {
      if (!(error instanceof RebalancingError)) this.crashed(error);
    }
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    await this.consumer.commit({
      offsets: offsets.map(({ topic, partition, offset }) => ({
        topic,
        partition,
        offset: BigInt(offset),
        leaderEpoch: -1,
      })),
    });
  }

  seek({ topic, partition, offset }: TopicPartitionOffset): void {
    const id = idOf(topic, partition);
    this.topicOf.set(id, { topic, partition });
    this.positions.set(id, BigInt(offset));
    this.bump(id);
    this.wake?.();
  }

  pause(entries: readonly { topic: string; partitions?: readonly number[] }[]): void {
    for (const { topic, partitions } of entries) {
      if (!partitions) this.pausedTopics.add(topic);
      else for (const partition of partitions) this.paused.add(idOf(topic, partition));
    }
  }

  async disconnect(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop?.catch(() => {});
    await this.consumer.close();
  }
}
