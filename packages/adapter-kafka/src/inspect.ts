import {
  DEAD_LETTER_GROUP,
  type DeadLetterState,
  type Envelope,
  type GroupState,
  type PartitionLag,
  PlugmqError,
  type TransportInspection,
  type TransportInspectQuery,
} from '@plugmq/core/driver';
import type { FetchedRecord, KafkaClient, Watermarks } from './connection.js';
import { PEEK_GROUP_PREFIX } from './kafkajs-inspect.js';
import type { KafkaConfig } from './options.js';
import { bandTopics, DELAY_MOVER_GROUP, REPLY_TOPIC, retryTopic, type TopicRegistry } from './topology.js';
import { recordToEnvelope } from './wire.js';

const DEAD_LETTER_SUFFIX = '.dlq';

/** How long a peek may take, joining its throw-away group included. */
const PEEK_TIMEOUT_MS = 15_000;

type Committed = ReadonlyMap<number, number>;

interface Pair {
  readonly type: string;
  readonly group: string;
}

/**
 * Where a partition is read from next: the committed offset, or the low watermark where the
 * group never committed (or its offsets expired, `offsets.retention.minutes`), never below what
 * retention left in the log.
 */
function startOf(mark: Watermarks, committed: Committed | undefined): number {
  const offset = committed?.get(mark.partition);
  return offset === undefined || offset < 0 ? mark.low : Math.min(mark.high, Math.max(offset, mark.low));
}

/**
 * `inspect`, `ensureGroup` and `peek` on Kafka, from the admin API only (no fetch, so polling is
 * cheap): a group's backlog is its lag, end offset − committed offset, per partition of the
 * type's topic; its retry backlog the lag on its retry topic `<type>.retry.<group>`. The lag
 * counts messages handed to a handler and not committed yet, so `inFlight` is undefined; so is
 * `oldestWaitingMs` (it would take a fetch per partition).
 */
export class KafkaInspector {
  constructor(
    private readonly client: KafkaClient,
    private readonly topics: TopicRegistry,
    private readonly config: KafkaConfig,
  ) {}

  /**
   * Creates the type's topic and nothing else: a group that never committed reads from the low
   * watermark (`startOf`, and a replay subscribes with `startFrom: 'earliest'`), so from now on
   * it has every record still in the log, without the consumer-group join (seconds) that
   * committing offsets for a group with no member takes in kafkajs. Records stay as long as the
   * topic's retention (`retention.ms`, 7 days by default).
   *
   * A dead-letter topic created here has one partition: its records are then one log in the order
   * they were dead-lettered, which browse shows and replay follows (with several partitions a
   * replay would interleave them partition by partition). Dead letters are few; one partition
   * carries them.
   */
  async ensureGroup(type: string, group: string): Promise<void> {
    await this.topics.ensure([type], group === DEAD_LETTER_GROUP ? 1 : undefined);
  }

  /**
   * From each partition's committed offset on, merged oldest first by record timestamp; within a
   * partition always in log order (the order a consumer of the group gets them).
   */
  async peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new PlugmqError('INVALID_ARGUMENT', `peek limit must be a positive integer (got ${limit})`);
    }
    if (!(await this.client.inspection.topicNames()).includes(type)) return [];
    const groupId = this.config.groupPrefix + group;
    const committed = toMap(await this.client.committedOffsets(groupId, type));
    const ranges = (await this.client.inspection.watermarks(type)).map((mark) => {
      const from = startOf(mark, committed);
      return { partition: mark.partition, from, to: Math.min(mark.high, from + limit) };
    });
    const read = await this.client.inspection.readRanges(type, ranges, PEEK_TIMEOUT_MS);
    return mergeOldestFirst(read, limit).map(({ partition, record }) =>
      recordToEnvelope(record, type, type, partition),
    );
  }

  async inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    const { client, config } = this;
    const wanted = query.types === undefined ? undefined : new Set(query.types);
    const [topicNames, allIds] = await Promise.all([
      client.inspection.topicNames(),
      client.inspection.groupIds(),
    ]);
    const existing = new Set(topicNames);
    // Delay movers are the driver's own groups, as retry topics are its own topics: not reported.
    const movers = config.groupPrefix + DELAY_MOVER_GROUP;
    const ids = allIds.filter(
      (id) =>
        id.startsWith(config.groupPrefix) && !id.startsWith(PEEK_GROUP_PREFIX) && !id.startsWith(movers),
    );
    const [offsets, described] = await Promise.all([
      Promise.all(ids.map(async (id) => [id, await client.inspection.groupOffsets(id)] as const)),
      client.inspection.describeGroups(ids),
    ]);
    /** `groupId` → topic → committed offsets. */
    const commits = new Map<string, Map<string, Committed>>();
    const groups = new Map<string, Pair>();
    const deadLetters = new Set<string>();
    const add = (pair: Pair, listed: boolean): void => {
      if (pair.group === DEAD_LETTER_GROUP) deadLetters.add(pair.type);
      else if (!listed || wanted === undefined || wanted.has(pair.type))
        groups.set(`${pair.group}\u0000${pair.type}`, pair);
    };
    // Priority band topics are the type's own, as retry topics are the group's: listed as the type.
    const bandOwner = new Map<string, string>();
    for (const topic of config.priorityLevels > 0 ? topicNames : []) {
      for (const band of bandTopics(topic, config.priorityLevels)) bandOwner.set(band, topic);
    }
    for (const [id, entries] of offsets) {
      const group = id.slice(config.groupPrefix.length);
      const byTopic = new Map(entries.map((entry) => [entry.topic, toMap(entry.partitions)]));
      commits.set(id, byTopic);
      for (const [topic, partitions] of byTopic) {
        if (topic === REPLY_TOPIC || ![...partitions.values()].some((offset) => offset >= 0)) continue;
        // A group's retry topic is reported with its type, not as a type of its own.
        if ([...byTopic.keys()].some((other) => other !== topic && retryTopic(other, group) === topic))
          continue;
        add({ type: bandOwner.get(topic) ?? topic, group }, true);
      }
    }
    for (const pair of query.groups ?? []) add(pair, false);
    for (const type of query.deadLetterTypes) deadLetters.add(type);
    // Dead-letter types by the default name: their reserved group commits only once replayed.
    for (const topic of topicNames) if (topic.endsWith(DEAD_LETTER_SUFFIX)) deadLetters.add(topic);
    const consumers = new Map<string, number>();
    for (const { groupId, members } of described) {
      for (const member of members) {
        for (const topic of new Set(member.topics)) {
          const key = `${groupId}\u0000${topic}`;
          consumers.set(key, (consumers.get(key) ?? 0) + 1);
        }
      }
    }
    const marks = new Map<string, Promise<Watermarks[]>>();
    const watermarks = (topic: string): Promise<Watermarks[]> => {
      let entry = marks.get(topic);
      if (!entry) {
        entry = existing.has(topic) ? client.inspection.watermarks(topic) : Promise.resolve([]);
        marks.set(topic, entry);
      }
      return entry;
    };
    const lagOf = async (groupId: string, topic: string): Promise<PartitionLag[]> => {
      const committed = commits.get(groupId)?.get(topic);
      return (await watermarks(topic)).map((mark) => ({
        partition: mark.partition,
        lag: mark.high - startOf(mark, committed),
      }));
    };
    const groupStates = await Promise.all(
      [...groups.values()]
        .filter(({ type, group }) => existing.has(type) && commits.has(config.groupPrefix + group))
        .map(async ({ type, group }): Promise<GroupState> => {
          const groupId = config.groupPrefix + group;
          const retry = retryTopic(type, group);
          const bands = bandTopics(type, config.priorityLevels);
          const [partitions, retries, ...banded] = await Promise.all(
            [type, retry, ...bands].map((topic) => lagOf(groupId, topic)),
          );
          // A band's partition i is counted with the type's partition i (bands are created alike).
          for (const lags of banded) addLags(partitions!, lags);
          return {
            type,
            group,
            backlog: sum(partitions!),
            inFlight: undefined,
            oldestWaitingMs: undefined,
            consumers: consumers.get(`${groupId}\u0000${type}`) ?? 0,
            retryBacklog: sum(retries!),
            partitions: partitions!,
          };
        }),
    );
    const deadLetterStates = await Promise.all(
      [...deadLetters].map(
        async (type): Promise<DeadLetterState> => ({
          type,
          count: sum(await lagOf(config.groupPrefix + DEAD_LETTER_GROUP, type)),
          oldestAgeMs: undefined,
        }),
      ),
    );
    return { groups: groupStates, deadLetters: deadLetterStates };
  }
}

type Read = { partition: number; record: FetchedRecord };

/** A k-way merge of the partitions' records by timestamp, each partition kept in offset order. */
function mergeOldestFirst(read: readonly Read[], limit: number): Read[] {
  const lanes = new Map<number, Read[]>();
  for (const entry of read) {
    let lane = lanes.get(entry.partition);
    if (!lane) {
      lane = [];
      lanes.set(entry.partition, lane);
    }
    lane.push(entry);
  }
  for (const lane of lanes.values()) lane.sort((a, b) => a.record.offset - b.record.offset);
  const heads = [...lanes.values()].map((lane) => ({ lane, next: 0 }));
  const out: Read[] = [];
  while (out.length < limit) {
    let best: (typeof heads)[number] | undefined;
    for (const head of heads) {
      const candidate = head.lane[head.next];
      if (!candidate) continue;
      const current = best?.lane[best.next];
      if (
        !current ||
        candidate.record.timestamp < current.record.timestamp ||
        (candidate.record.timestamp === current.record.timestamp && candidate.partition < current.partition)
      )
        best = head;
    }
    if (!best) break;
    out.push(best.lane[best.next++]!);
  }
  return out;
}

function toMap(entries: readonly { partition: number; offset: number }[]): Map<number, number> {
  return new Map(entries.map(({ partition, offset }) => [partition, offset]));
}

function addLags(into: PartitionLag[], lags: readonly PartitionLag[]): void {
  for (const { partition, lag } of lags) {
    const index = into.findIndex((entry) => entry.partition === partition);
    if (index >= 0) into[index] = { partition, lag: into[index]!.lag + lag };
    else into.push({ partition, lag });
  }
}

function sum(partitions: readonly PartitionLag[]): number {
  let total = 0;
  for (const { lag } of partitions) total += lag;
  return total;
}
