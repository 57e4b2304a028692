import { type Logger, PlugmqError, withDeadline } from '@plugmq/core/driver';
import kafkajs, { type Admin, type IHeaders, type Message, type Producer, type SASLOptions } from 'kafkajs';
import type {
  AcknowledgedPartition,
  GroupMember,
  KafkaClient,
  MemberOptions,
  OutgoingRecord,
  TopicLayout,
  TopicPartitionOffset,
  TopicSpec,
} from './connection.js';
import { errorType, RETRY } from './kafkajs-errors.js';
import { KafkajsInspect } from './kafkajs-inspect.js';
import { logCreator } from './kafkajs-log.js';
import { KafkajsMember } from './kafkajs-member.js';
import type { KafkaConfig } from './options.js';
import { retrying } from './retrying.js';
import { SocketWatch } from './socket-watch.js';

const { Kafka, logLevel } = kafkajs;

// The producer hands a failed send back sooner: the publisher re-groups the records of a partition
// whose leader died by the new leaders, so one dead broker does not hold the other partitions.
const PRODUCER_RETRY = { initialRetryTime: 100, maxRetryTime: 1_000, retries: 3 };

const explicitPartitioner = () => {
  const fallback = kafkajs.Partitioners.DefaultPartitioner();
  return (args: kafkajs.PartitionerArgs): number => args.message.partition ?? fallback(args);
};

const REBALANCE_TYPES = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION']);
const FATAL_PRODUCER_TYPES = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'INVALID_PRODUCER_EPOCH',
  'UNKNOWN_PRODUCER_ID',
  'DUPLICATE_SEQUENCE_NUMBER',
  'INVALID_PRODUCER_ID_MAPPING',
]);

const RETRIABLE_NAMES = new Set([
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSNoBrokerAvailableError',
]);

export class KafkajsClient implements KafkaClient {
  private readonly kafka: InstanceType<typeof Kafka>;
  private readonly admin: Admin;
  private producer: Producer;
  private connected: Promise<void> | undefined;
  private resetting: Promise<void> | undefined;
  private readonly sockets = new SocketWatch();
  readonly inspection: KafkajsInspect;

  constructor(
    private readonly config: KafkaConfig,
    private readonly logger: Logger,
  ) {
    this.kafka = new Kafka({
      clientId: config.clientId,
      brokers: config.brokers,
      connectionTimeout: Math.min(config.connectTimeoutMs, 10_000),
      retry: RETRY,
      logLevel: logLevel.WARN,
      logCreator: logCreator(logger),
      socketFactory: this.sockets.factory,
      ...(config.ssl === undefined ? {} : { ssl: config.ssl.reveal() as never }),
      ...(config.sasl === undefined ? {} : { sasl: config.sasl.reveal() as unknown as SASLOptions }),
    });
    this.admin = this.kafka.admin({ retry: RETRY });
    this.producer = this.createProducer();
    this.inspection = new KafkajsInspect(this.kafka, this.admin, config, (error) => this.isRetriable(error));
  }

  private createProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: PRODUCER_RETRY,
      // The publisher sets every record's partition (partitioner.ts): kafkajs' default would
      // allocate a filtered copy of the topic's partitions per record only to return it.
      createPartitioner: explicitPartitioner,
    });
  }

  /**
   * Connects, or rejects with CONNECTION saying why: at once when kafkajs gives up (a refused
   * login), else after `connectTimeoutMs` with what the sockets met meanwhile (kafkajs itself
   * keeps retrying refused or unresolvable brokers and would only time out).
   */
  connect(): Promise<void> {
    this.connected ??= this.open().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  private async open(): Promise<void> {
    this.sockets.reset();
    const ms = this.config.connectTimeoutMs;
    const brokers = this.config.brokers.join(',');
    const fatal = new Promise<never>((_, reject) => {
      this.sockets.onFatal = reject;
    });
    try {
      await withDeadline(
        Promise.race([Promise.all([this.admin.connect(), this.producer.connect()]), fatal]),
        ms,
        () => new PlugmqError('CONNECTION', `kafka broker ${brokers} did not answer within ${ms} ms`),
      );
    } catch (error) {
      throw this.sockets.connectError(error, brokers, ms);
    } finally {
      this.sockets.onFatal = undefined;
    }
  }

  async createTopics(specs: readonly TopicSpec[]): Promise<void> {
    const topics = specs.map((spec) => ({
      topic: spec.topic,
      numPartitions: spec.partitions,
      replicationFactor: spec.replicationFactor,
    }));
    // Right after creation the broker may not know the topic yet (UNKNOWN_TOPIC_OR_PARTITION while
    // waiting for leaders): ask again; the second answer is "already exists", which is success.
    await retrying(
      () => this.admin.createTopics({ waitForLeaders: true, topics }),
      (error) => errorType(error) !== 'TOPIC_ALREADY_EXISTS' && this.isRetriable(error),
    ).catch((error: unknown) => {
      if (errorType(error) !== 'TOPIC_ALREADY_EXISTS') throw error;
    });
  }

  async endOffsets(topic: string): Promise<{ partition: number; offset: number }[]> {
    const offsets = await retrying(
      () => this.admin.fetchTopicOffsets(topic),
      (e) => this.isRetriable(e),
    );
    return offsets.map(({ partition, offset }) => ({ partition, offset: Number(offset) }));
  }

  async committedOffsets(groupId: string, topic: string): Promise<{ partition: number; offset: number }[]> {
    const [entry] = await retrying(
      () => this.admin.fetchOffsets({ groupId, topics: [topic] }),
      (e) => this.isRetriable(e),
    );
    return (entry?.partitions ?? []).map(({ partition, offset }) => ({ partition, offset: Number(offset) }));
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.admin.deleteGroups([groupId]);
  }

  async commitForEmptyGroup(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    for (const topic of new Set(offsets.map((entry) => entry.topic))) {
      const partitions = offsets
        .filter((entry) => entry.topic === topic)
        .map(({ partition, offset }) => ({ partition, offset: String(offset) }));
      await this.admin.setOffsets({ groupId, topic, partitions });
    }
  }

  async hasConsumerGroup(topic: string): Promise<boolean> {
    const { groups } = await this.admin.listGroups();
    const ids = groups.map((group) => group.groupId);
    if (ids.length === 0) return false;
    const { groups: described } = await this.admin.describeGroups(ids);
    for (const group of described) {
      for (const member of group.members) {
        if (memberTopics(member.memberMetadata)?.includes(topic)) return true;
      }
    }
    const offsets = await Promise.all(
      ids.map((groupId) => this.admin.fetchOffsets({ groupId, topics: [topic] }).catch(() => [])),
    );
    return offsets.some((entries) =>
      entries.some((entry) => entry.partitions.some((partition) => Number(partition.offset) >= 0)),
    );
  }

  async ping(timeoutMs: number): Promise<void> {
    await withDeadline(
      this.admin.describeCluster(),
      timeoutMs,
      () => new PlugmqError('CONNECTION', `kafka health check did not answer within ${timeoutMs} ms`),
    );
  }

  async topicLayout(topic: string): Promise<TopicLayout> {
    const { topics } = await retrying(
      () => this.admin.fetchTopicMetadata({ topics: [topic] }),
      (e) => this.isRetriable(e),
    );
    const partitions = topics.find((entry) => entry.name === topic)?.partitions ?? [];
    const leaders: number[] = [];
    for (const { partitionId, leader } of partitions) leaders[partitionId] = leader;
    for (let p = 0; p < leaders.length; p++) leaders[p] ??= -1;
    if (leaders.length === 0) {
      throw new PlugmqError('PUBLISH_FAILED', `kafka has no partitions for topic ${topic}`);
    }
    return { leaders };
  }

  async send(records: readonly OutgoingRecord[]): Promise<readonly AcknowledgedPartition[]> {
    const topic = records[0]?.topic;
    if (
      topic !== undefined &&
      records.every((record) => record.topic === topic && Buffer.isBuffer(record.value))
    ) {
      // The common case (one type, Buffer bodies): an OutgoingRecord already has the shape of a
      // kafkajs message (its extra `topic` is ignored), so no copy is made per record.
      return this.producer.send({ topic, acks: -1, messages: records as unknown as Message[] });
    }
    const byTopic = new Map<string, Message[]>();
    for (const record of records) {
      let list = byTopic.get(record.topic);
      if (!list) {
        list = [];
        byTopic.set(record.topic, list);
      }
      const { value } = record;
      // kafkajs treats `undefined` key/partition/timestamp as absent; one object shape per record.
      list.push({
        key: record.key,
        partition: record.partition,
        timestamp: record.timestamp,
        value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
        headers: record.headers as IHeaders,
      } as Message);
    }
    const topicMessages = [];
    for (const [name, messages] of byTopic) topicMessages.push({ topic: name, messages });
    return this.producer.sendBatch({ acks: -1, topicMessages });
  }

  resetProducer(): Promise<void> {
    // Partitions fail together when their producer breaks: one replacement serves them all.
    this.resetting ??= (async () => {
      const old = this.producer;
      this.producer = this.createProducer();
      await old.disconnect().catch(() => {});
      await this.producer.connect();
    })().finally(() => {
      this.resetting = undefined;
    });
    return this.resetting;
  }

  member(options: MemberOptions): GroupMember {
    return new KafkajsMember(this.kafka, options, this.logger);
  }

  isRebalance(error: unknown): boolean {
    const type = errorType(error);
    return (
      (type !== undefined && REBALANCE_TYPES.has(type)) || (error as Error)?.name === 'KafkaJSRebalancing'
    );
  }

  isFatalProducerError(error: unknown): boolean {
    const type = errorType(error);
    return type !== undefined && FATAL_PRODUCER_TYPES.has(type);
  }

  isRetriable(error: unknown): boolean {
    if (this.isFatalProducerError(error)) return true;
    let current: unknown = error;
    for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
      const { retriable, name } = current as { retriable?: unknown; name?: unknown };
      if (retriable === true || (typeof name === 'string' && RETRIABLE_NAMES.has(name))) return true;
      current =
        (current as { cause?: unknown }).cause ?? (current as { originalError?: unknown }).originalError;
    }
    return false;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
  }
}

/**
 * The topics a member subscribed to, from its metadata; undefined where it cannot be read (a
 * member of a rebalancing group has none yet, a non-consumer group another format).
 */
function memberTopics(metadata: Buffer): string[] | undefined {
  try {
    return kafkajs.AssignerProtocol.MemberMetadata.decode(metadata)?.topics;
  } catch {
    return undefined;
  }
}
