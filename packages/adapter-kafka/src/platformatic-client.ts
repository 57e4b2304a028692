import type { Admin, BaseOptions, MessageToProduce, Producer, ProducerOptions } from '@platformatic/kafka';
import {
  describeError,
  type Logger,
  PlugmqError,
  redactCredentials,
  withDeadline,
} from '@plugmq/core/driver';
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
import type { KafkaConfig, KafkaSasl } from './options.js';
import { subscriptionAwareAssigner } from './platformatic-assigner.js';
import { apiIds, chainErrors, connectFailure, hasApiId, isTransient } from './platformatic-errors.js';
import { guardBrokerLookups } from './platformatic-guard.js';
import { PlatformaticInspect } from './platformatic-inspect.js';
import { PlatformaticMember } from './platformatic-member.js';
import { retrying } from './retrying.js';

type Library = typeof import('@platformatic/kafka');
type Records = Producer<string, Buffer, string, string>;

const REBALANCE_IDS = new Set([
  'REBALANCE_IN_PROGRESS',
  'NOT_COORDINATOR',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
]);
const FATAL_PRODUCER_IDS = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'INVALID_PRODUCER_EPOCH',
  'UNKNOWN_PRODUCER_ID',
  'DUPLICATE_SEQUENCE_NUMBER',
  'INVALID_PRODUCER_ID_MAPPING',
]);

/** The library's own retries are short: the publisher's deadline and back-off take over after them. */
const RETRIES = 3;
const RETRY_DELAY_MS = 100;

/**
 * The seam on @platformatic/kafka (a maintained, pure-JavaScript client). The library is handed
 * in (`loadPlatformaticClient` imports it only when `client: 'platformatic'` is chosen), so the
 * kafkajs path never loads it and Node versions it does not support are refused clearly.
 */
export class PlatformaticClient implements KafkaClient {
  private readonly base: BaseOptions;
  private readonly admin: Admin;
  readonly inspection: PlatformaticInspect;
  private producer: Records;
  private connected: Promise<void> | undefined;
  private resetting: Promise<void> | undefined;

  constructor(
    private readonly lib: Library,
    private readonly config: KafkaConfig,
    private readonly logger: Logger,
  ) {
    const sasl = config.sasl?.reveal();
    this.base = {
      clientId: config.clientId,
      bootstrapBrokers: config.brokers,
      connectTimeout: Math.min(config.connectTimeoutMs, 10_000),
      retries: RETRIES,
      retryDelay: RETRY_DELAY_MS,
      autocreateTopics: false,
      ...tlsOption(config),
      ...(sasl === undefined ? {} : { sasl: saslOption(sasl) }),
    };
    this.admin = guardBrokerLookups(lib, new lib.Admin({ ...this.base }));
    this.inspection = new PlatformaticInspect(lib, this.base, this.admin, (error) => this.isRetriable(error));
    this.producer = this.createProducer();
  }

  private createProducer(): Records {
    const options: ProducerOptions<string, Buffer, string, string> = {
      ...this.base,
      idempotent: true,
      acks: -1,
      serializers: {
        key: this.lib.stringSerializer,
        headerKey: this.lib.stringSerializer,
        headerValue: this.lib.stringSerializer,
      },
    };
    return guardBrokerLookups(this.lib, new this.lib.Producer(options));
  }

  connect(): Promise<void> {
    this.connected ??= this.open().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  /** Rejects with CONNECTION at once on a refused login, else after `connectTimeoutMs`. */
  private async open(): Promise<void> {
    const ms = this.config.connectTimeoutMs;
    const brokers = this.config.brokers.join(',');
    const deadline = Date.now() + ms;
    let last: unknown;
    const attempt = async () => {
      for (let wait = 100; ; wait = Math.min(wait * 2, 1_000)) {
        try {
          await this.admin.metadata({ topics: [], forceUpdate: true });
          return;
        } catch (error) {
          last = error;
          if (chainErrors(error).some((e) => e.code === 'PLT_KFK_AUTHENTICATION')) throw error;
          if (Date.now() + wait >= deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    };
    try {
      await withDeadline(attempt(), ms, () => new Error('deadline'));
    } catch (error) {
      const cause = last ?? error;
      throw new PlugmqError(
        'CONNECTION',
        `kafka broker ${brokers} could not be reached within ${ms} ms: ${redactCredentials(connectFailure(cause) || describeError(cause))}`,
        { cause },
      );
    }
  }

  async createTopics(specs: readonly TopicSpec[]): Promise<void> {
    for (const spec of specs) {
      await this.admin
        .createTopics({ topics: [spec.topic], partitions: spec.partitions, replicas: spec.replicationFactor })
        .catch((error: unknown) => {
          if (!apiIds(error).has('TOPIC_ALREADY_EXISTS')) throw error;
        });
    }
    // Waits for the leaders: a topic just created is known to its controller a moment before
    // the broker that answers metadata serves it.
    await retrying(
      async () => {
        const metadata = await this.admin.metadata({
          topics: specs.map((spec) => spec.topic),
          forceUpdate: true,
        });
        for (const spec of specs) {
          const topic = metadata.topics.get(spec.topic);
          if (!topic || topic.partitions.some((partition) => !partition || partition.leader < 0)) {
            throw Object.assign(new Error(`kafka topic ${spec.topic} has no leaders yet`), {
              retriable: true,
            });
          }
        }
      },
      (error) => (error as { retriable?: unknown }).retriable === true || this.isRetriable(error),
    );
  }

  private async partitionCount(topic: string): Promise<number> {
    const metadata = await retrying(
      () => this.admin.metadata({ topics: [topic] }),
      (e) => this.isRetriable(e),
    );
    return metadata.topics.get(topic)?.partitionsCount ?? 0;
  }

  async endOffsets(topic: string): Promise<{ partition: number; offset: number }[]> {
    const count = await this.partitionCount(topic);
    const partitions = Array.from({ length: count }, (_, partitionIndex) => ({
      partitionIndex,
      timestamp: -1n,
    }));
    const listed = await retrying(
      () => this.admin.listOffsets({ topics: [{ name: topic, partitions }] }),
      (e) => this.isRetriable(e),
    );
    const entry = listed.find((item) => item.name === topic);
    return (entry?.partitions ?? []).map(({ partitionIndex, offset }) => ({
      partition: partitionIndex,
      offset: Number(offset),
    }));
  }

  async committedOffsets(groupId: string, topic: string): Promise<{ partition: number; offset: number }[]> {
    const count = await this.partitionCount(topic);
    const partitionIndexes = Array.from({ length: count }, (_, index) => index);
    const groups = await retrying(
      () =>
        this.admin.listConsumerGroupOffsets({
          groups: [{ groupId, topics: [{ name: topic, partitionIndexes }] }],
        }),
      (e) => this.isRetriable(e),
    );
    const entry = groups.find((group) => group.groupId === groupId)?.topics.find((t) => t.name === topic);
    const offsets = new Map<number, number>();
    for (const partition of entry?.partitions ?? []) {
      offsets.set(partition.partitionIndex, Number(partition.committedOffset));
    }
    return partitionIndexes.map((partition) => ({ partition, offset: offsets.get(partition) ?? -1 }));
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.admin.deleteGroups({ groups: [groupId] });
  }

  async commitForEmptyGroup(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const topics = [...new Set(offsets.map((entry) => entry.topic))].map((name) => ({
      name,
      partitionOffsets: offsets
        .filter((entry) => entry.topic === name)
        .map(({ partition, offset }) => ({ partition, offset: BigInt(offset) })),
    }));
    await this.admin.alterConsumerGroupOffsets({ groupId, topics });
  }

  async hasConsumerGroup(topic: string): Promise<boolean> {
    const listed = await this.admin.listGroups();
    const ids = [...listed.keys()];
    if (ids.length === 0) return false;
    const described = await this.admin.describeGroups({ groups: ids });
    for (const group of described.values()) {
      for (const member of group.members.values()) {
        if (member.metadata?.topics?.includes(topic)) return true;
      }
    }
    const offsets = await this.admin
      .listConsumerGroupOffsets({ groups: ids.map((groupId) => ({ groupId, topics: null })) })
      .catch(() => []);
    return offsets.some((group) =>
      group.topics.some(
        (entry) => entry.name === topic && entry.partitions.some((p) => p.committedOffset >= 0n),
      ),
    );
  }

  async ping(timeoutMs: number): Promise<void> {
    await withDeadline(
      this.admin.metadata({ topics: [], forceUpdate: true }),
      timeoutMs,
      () => new PlugmqError('CONNECTION', `kafka health check did not answer within ${timeoutMs} ms`),
    );
  }

  async topicLayout(topic: string): Promise<TopicLayout> {
    const metadata = await retrying(
      () => this.admin.metadata({ topics: [topic], forceUpdate: true }),
      (e) => this.isRetriable(e),
    );
    const partitions = metadata.topics.get(topic)?.partitions ?? [];
    const leaders = Array.from({ length: partitions.length }, (_, p) => partitions[p]?.leader ?? -1);
    if (leaders.length === 0) {
      throw new PlugmqError('PUBLISH_FAILED', `kafka has no partitions for topic ${topic}`);
    }
    return { leaders };
  }

  /**
   * Produces with acks from every in-sync replica. The library sends one request per leader and
   * rejects when any of them failed, with what the others acknowledged in `produced`: those are
   * returned, and the publisher sends the rest again (re-sending them too would duplicate them,
   * since their sequence numbers moved on).
   */
  async send(records: readonly OutgoingRecord[]): Promise<readonly AcknowledgedPartition[]> {
    const messages: MessageToProduce<string, Buffer, string, string>[] = records.map((record) => ({
      topic: record.topic,
      partition: record.partition,
      key: record.key,
      value: Buffer.isBuffer(record.value)
        ? record.value
        : Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength),
      headers: record.headers as Record<string, string>,
      ...(record.timestamp === undefined ? {} : { timestamp: BigInt(record.timestamp) }),
    }));
    try {
      const result = await this.producer.send({ messages });
      return acknowledged(result.offsets);
    } catch (error) {
      // The producer keeps its own metadata (up to metadataMaxAge) and forgets it on stale-leader
      // answers only, not when the leader's node is gone: its sends went on to the dead node for
      // seconds after the cluster had moved the partition (cluster fault suite).
      if (chainErrors(error).some((e) => e.code === 'PLT_KFK_NETWORK')) this.producer.clearMetadata();
      const produced = (error as { produced?: { offsets?: { topic: string; partition: number }[] } })
        .produced;
      const partial = acknowledged(produced?.offsets);
      if (partial.length > 0 && this.isRetriable(error) && !this.isFatalProducerError(error)) {
        this.logger.debug(
          { err: redactCredentials(describeError(error)) },
          'plugmq: kafka acknowledged part of a send; the rest goes again',
        );
        return partial;
      }
      throw error;
    }
  }

  resetProducer(): Promise<void> {
    this.resetting ??= (async () => {
      const old = this.producer;
      this.producer = this.createProducer();
      await old.close().catch(() => {});
    })().finally(() => {
      this.resetting = undefined;
    });
    return this.resetting;
  }

  member(options: MemberOptions): GroupMember {
    const consumer = guardBrokerLookups(
      this.lib,
      new this.lib.Consumer<string, Buffer, string, string>({
        ...this.base,
        groupId: options.groupId,
        sessionTimeout: options.sessionTimeoutMs,
        rebalanceTimeout: options.rebalanceTimeoutMs,
        heartbeatInterval: options.heartbeatIntervalMs,
        maxWaitTime: options.maxWaitTimeMs,
        autocommit: false,
        partitionAssigner: subscriptionAwareAssigner,
      }),
    );
    return new PlatformaticMember(consumer, options, this.logger);
  }

  isRebalance(error: unknown): boolean {
    return (error as Error)?.name === 'PlatformaticRebalancing' || hasApiId(error, REBALANCE_IDS);
  }

  isFatalProducerError(error: unknown): boolean {
    return hasApiId(error, FATAL_PRODUCER_IDS);
  }

  isRetriable(error: unknown): boolean {
    return this.isFatalProducerError(error) || isTransient(error);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer.close(), this.admin.close()]);
  }
}

function acknowledged(
  offsets: readonly { topic: string; partition: number }[] | undefined,
): AcknowledgedPartition[] {
  return (offsets ?? []).map(({ topic, partition }) => ({ topicName: topic, partition }));
}

function tlsOption(config: KafkaConfig): { tls?: Record<string, unknown> } {
  const ssl = config.ssl?.reveal();
  if (ssl === undefined || ssl === false) return {};
  return { tls: ssl === true ? {} : ssl };
}

/** `{ mechanism: 'plain', … }` (kafkajs' spelling, the one options.ts documents) → the library's. */
function saslOption(sasl: KafkaSasl): NonNullable<BaseOptions['sasl']> {
  const { mechanism, ...rest } = sasl;
  return { ...rest, mechanism: mechanism.toUpperCase() } as NonNullable<BaseOptions['sasl']>;
}

/** Node versions @platformatic/kafka 1.x supports (its `engines`: >= 20.19.4). */
export function nodeSupportsPlatformatic(version = process.versions.node): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  if (major !== 20) return major > 20;
  return minor > 19 || (minor === 19 && patch >= 4);
}

/** Loads @platformatic/kafka (only when chosen) and builds the client on it. */
export async function loadPlatformaticClient(config: KafkaConfig, logger: Logger): Promise<KafkaClient> {
  if (!nodeSupportsPlatformatic()) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `client 'platformatic' needs Node >= 20.19.4 (this is ${process.versions.node}); use client 'kafkajs'`,
    );
  }
  let lib: Library;
  try {
    lib = await import('@platformatic/kafka');
  } catch (error) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `client 'platformatic' needs the @platformatic/kafka package (an optional peer dependency): install it with npm install @platformatic/kafka@1.35.0 (${describeError(error)})`,
      { cause: error },
    );
  }
  return new PlatformaticClient(lib, config, logger);
}
