import {
  type DeliverFn,
  describeError,
  type Envelope,
  type Logger,
  type MessageSizeLimit,
  messageTooLarge,
  type OutgoingEnvelope,
  PlugmqError,
  redactCredentials,
  type SubscribeRequest,
  type Transport,
  type TransportInspection,
  type TransportInspectQuery,
  type TransportPublishContext,
  type TransportSubscription,
  waitForAbort,
} from '@plugmq/core/driver';
import type { KafkaClient, OutgoingRecord } from './connection.js';
import { DelayMovers } from './delay-movers.js';
import { KafkaInspector } from './inspect.js';
import { KafkajsClient } from './kafkajs-client.js';
import type { KafkaConfig } from './options.js';
import { Publisher } from './publisher.js';
import { KafkaReplies } from './replies.js';
import { KafkaSubscription } from './subscription.js';
import { delayTopic, TopicRegistry, topicForPriority } from './topology.js';
import { DUE_HEADER, envelopeToRecord, recordBytes } from './wire.js';

/** How long close waits for subscriptions to commit and leave their groups. */
const CLOSE_WAIT_MS = 15_000;

/** PlugMQ over Kafka: a topic per type, a consumer group per group (see README.md). */
export class KafkaTransport implements Transport {
  readonly replies: KafkaReplies;
  private readonly client: KafkaClient;
  private readonly topics: TopicRegistry;
  private readonly publisher: Publisher;
  private readonly subscriptions = new Set<KafkaSubscription>();
  /** Types known to have a consumer group (for `mandatory`); positive answers only. */
  private readonly routed = new Set<string>();
  private closed = false;
  private readonly sizeLimit: MessageSizeLimit;
  private readonly inspector: KafkaInspector;
  private readonly movers: DelayMovers;

  constructor(
    private readonly config: KafkaConfig,
    private readonly logger: Logger,
    client?: KafkaClient,
  ) {
    this.client = client ?? new KafkajsClient(config, logger);
    this.sizeLimit = {
      driver: 'kafka',
      maxBytes: config.maxMessageBytes,
      brokerSetting: "the broker's message.max.bytes (or the topic's max.message.bytes)",
    };
    this.topics = new TopicRegistry(this.client, config.partitions, config.replicationFactor);
    this.publisher = new Publisher(this.client, logger);
    this.replies = new KafkaReplies(this.client, this.topics, this.publisher, config, logger);
    this.inspector = new KafkaInspector(this.client, this.topics, config);
    this.movers = new DelayMovers({
      client: this.client,
      topics: this.topics,
      publisher: this.publisher,
      config,
      logger,
    });
  }

  /** Connects, or fails with CONNECTION after `connectTimeoutMs`. */
  async connect(): Promise<void> {
    await this.client.connect();
  }

  publish(envelopes: readonly OutgoingEnvelope[], context: TransportPublishContext): Promise<void> {
    const levels = this.config.priorityLevels;
    const records = envelopes.map((envelope) => toRecord(envelope, levels));
    const limit = this.config.maxMessageBytes;
    for (let index = 0; index < records.length; index++) {
      // The broker would refuse the whole batch with a protocol error; say which message and why.
      const bytes = recordBytes(records[index]!, limit);
      if (bytes > limit) return Promise.reject(messageTooLarge(envelopes[index]!, bytes, this.sizeLimit));
    }
    let ready = true;
    let mandatory = false;
    for (let index = 0; index < records.length; index++) {
      const envelope = envelopes[index]!;
      if (!this.topics.has(records[index]!.topic)) ready = false;
      if (envelope.mandatory && !this.routed.has(envelope.type)) mandatory = true;
    }
    // Fast path: topics already created, nothing to check; stay in this tick for coalescing.
    if (ready && !mandatory) return this.publisher.publish(records, context);
    return this.slowPublish(envelopes, records, context);
  }

  private async slowPublish(
    envelopes: readonly OutgoingEnvelope[],
    records: OutgoingRecord[],
    context: TransportPublishContext,
  ): Promise<void> {
    // The admin calls retry for long against a broker that is away: the publish deadline bounds
    // them too (they go on in the background; a topic created late is simply there next time).
    const deadline = waitForAbort(context.signal, 'publish to kafka');
    try {
      await Promise.race([this.prepare(envelopes, records), deadline.promise]);
    } catch (error) {
      if (error instanceof PlugmqError) throw error;
      throw new PlugmqError(
        'PUBLISH_FAILED',
        `kafka could not prepare the publish: ${redactCredentials(describeError(error))}`,
        { cause: error },
      );
    } finally {
      deadline.dispose();
    }
    return this.publisher.publish(records, context);
  }

  /** Checks mandatory publishes and creates missing topics. */
  private async prepare(
    envelopes: readonly OutgoingEnvelope[],
    records: readonly OutgoingRecord[],
  ): Promise<void> {
    for (const envelope of envelopes) {
      if (!envelope.mandatory || this.routed.has(envelope.type)) continue;
      if (!(await this.client.hasConsumerGroup(envelope.type))) {
        throw new PlugmqError(
          'PUBLISH_FAILED',
          `no consumer group reads ${envelope.type} (mandatory publish); nothing was written`,
        );
      }
      this.routed.add(envelope.type);
    }
    await this.topics.ensure([...new Set(records.map((record) => record.topic))]);
  }

  async subscribe(request: SubscribeRequest, deliver: DeliverFn): Promise<TransportSubscription> {
    const subscription = new KafkaSubscription(request, deliver, {
      client: this.client,
      topics: this.topics,
      publisher: this.publisher,
      config: this.config,
      logger: this.logger,
    });
    const started = subscription.start();
    // Consumers of a type run its delay mover; both join at once (two group joins, not in turn).
    const moving = this.movers.acquire(request.types, started);
    const [joined, moved] = await Promise.allSettled([started, moving]);
    if (joined.status === 'rejected' || moved.status === 'rejected') {
      // Undo the half that worked: a subscription without its movers is not handed out.
      if (joined.status === 'fulfilled') {
        await subscription.stop();
        await subscription.whenFinished().catch(() => {});
      }
      if (moved.status === 'fulfilled') this.movers.release(request.types);
      const error = joined.status === 'rejected' ? joined.reason : (moved as PromiseRejectedResult).reason;
      if (error instanceof PlugmqError) throw error;
      throw new PlugmqError(
        'CONNECTION',
        `kafka consume failed: ${redactCredentials(describeError(error))}`,
        {
          cause: error,
        },
      );
    }
    for (const type of request.types) this.routed.add(type);
    this.subscriptions.add(subscription);
    return {
      stop: async () => {
        await subscription.stop();
        this.movers.release(request.types);
        void subscription.whenFinished().finally(() => this.subscriptions.delete(subscription));
      },
    };
  }

  inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    return this.whileOpen(() => this.inspector.inspect(query), 'inspect');
  }

  ensureGroup(type: string, group: string): Promise<void> {
    return this.whileOpen(() => this.inspector.ensureGroup(type, group), 'create the group');
  }

  peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    return this.whileOpen(async () => {
      await this.settledCommits(group);
      return this.inspector.peek(type, group, limit);
    }, 'peek');
  }

  /**
   * A subscription commits its last offsets after `stop()` resolved: a peek right after one of
   * this group stopped here (a replay, say) waits for those commits, or it would show again what
   * was just taken. At most CLOSE_WAIT_MS.
   */
  private async settledCommits(group: string): Promise<void> {
    const finishing = [...this.subscriptions].filter((s) => s.finishing(group)).map((s) => s.whenFinished());
    if (finishing.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(finishing),
      new Promise((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Admin calls fail with CONNECTION saying what could not be done (PlugmqErrors pass as they are). */
  private async whileOpen<T>(work: () => Promise<T>, what: string): Promise<T> {
    if (this.closed) throw new PlugmqError('CLOSED', 'the kafka transport is closed');
    try {
      return await work();
    } catch (error) {
      if (error instanceof PlugmqError) throw error;
      throw new PlugmqError(
        'CONNECTION',
        `kafka could not ${what}: ${redactCredentials(describeError(error))}`,
        {
          cause: error,
        },
      );
    }
  }

  async health(): Promise<{ ok: boolean; details?: Record<string, unknown> }> {
    const details: Record<string, unknown> = {
      brokers: this.config.brokers,
      subscriptions: this.subscriptions.size,
    };
    if (this.closed) return { ok: false, details: { ...details, closed: true } };
    try {
      await this.client.ping(Math.min(this.config.connectTimeoutMs, 5_000));
    } catch (error) {
      return { ok: false, details: { ...details, error: redactCredentials(describeError(error)) } };
    }
    return { ok: true, details };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const finishing = Promise.allSettled([
      ...[...this.subscriptions].map((s) => s.whenFinished()),
      // Moves in flight finish before the publisher closes below.
      this.movers.whenFinished(),
    ]);
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise((resolve) => {
      timer = setTimeout(resolve, CLOSE_WAIT_MS);
    });
    await Promise.race([finishing, waited]);
    clearTimeout(timer);
    this.publisher.close();
    await this.client.close();
  }
}

/**
 * A delayed publish waits in the type's delay topic, with its due time, until a mover moves it
 * (to its priority's band); any other goes to its band's topic, the type's own without priority.
 */
function toRecord(envelope: OutgoingEnvelope, levels: number): OutgoingRecord {
  if (!envelope.delayMs) {
    return envelopeToRecord(envelope, topicForPriority(envelope.type, envelope.priority, levels));
  }
  return envelopeToRecord(envelope, delayTopic(envelope.type), {
    [DUE_HEADER]: String(envelope.timestamp + envelope.delayMs),
  });
}
