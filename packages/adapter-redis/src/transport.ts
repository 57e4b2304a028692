import { inspect } from 'node:util';
import {
  type DeliverFn,
  describeError,
  type Envelope,
  type Logger,
  type MessageSizeLimit,
  type OutgoingEnvelope,
  PlugmqError,
  type ReplyChannel,
  type ReplyTransport,
  redactCredentials,
  type SubscribeRequest,
  type Transport,
  type TransportInspection,
  type TransportInspectQuery,
  type TransportPublishContext,
  type TransportSubscription,
  withDeadline,
} from '@plugmq/core/driver';
import { ClientFactory, type RedisClient } from './connection.js';
import { DelayMover } from './delay-mover.js';
import { ensureRedisGroup, inspectRedis, peekRedis } from './inspect.js';
import type { RedisConfig } from './options.js';
import { Publisher } from './publisher.js';
import { ListReplyChannel, sendReply } from './replies.js';
import { Scripts } from './scripts.js';
import { RedisSubscription } from './subscription.js';
import { Trimmer } from './trimmer.js';

/** How long health() waits for PING. */
const HEALTH_TIMEOUT_MS = 2_000;

/**
 * The Redis Streams Transport: core's QueueManager drives it. One command connection (publishes,
 * acks, scripts; auto-pipelined), one blocking reader connection per subscription (per type on a
 * cluster), one per reply channel. See keys.ts for the key layout.
 */
export class RedisTransport implements Transport {
  /** JSON bodies go out as the text core encoded (see wire.ts). */
  readonly writesText = true;
  readonly replies: ReplyTransport;
  private readonly factory: ClientFactory;
  private readonly client: RedisClient;
  /** waitForReplicas: durable writes and their WAITs, which block only this connection. */
  private readonly durableClient: RedisClient | undefined;
  private readonly scripts: Scripts;
  private readonly publisher: Publisher;
  private readonly movers: DelayMover;
  private readonly trimmer: Trimmer;
  private readonly subscriptions = new Set<RedisSubscription>();
  private readonly channels = new Set<ListReplyChannel>();
  private connects = 0;
  private closed = false;

  readonly messageSizeLimit: MessageSizeLimit;
  private ensuring: Promise<void> = Promise.resolve();
  private constructor(
    private readonly config: RedisConfig,
    private readonly logger: Logger,
  ) {
    this.messageSizeLimit = {
      driver: 'redis',
      maxBytes: config.maxMessageBytes,
      brokerSetting: "the server's proto-max-bulk-len",
    };
    this.factory = new ClientFactory(config, logger);
    this.client = this.factory.create('command');
    this.scripts = new Scripts(this.client);
    this.client.on('ready', () => this.connects++);
    this.movers = new DelayMover(this.scripts, config.delayPollMs, logger, this.factory.failsOver);
    this.trimmer = new Trimmer(this.scripts, config.trimIntervalMs, logger, this.factory.failsOver);
    if (config.waitForReplicas > 0) this.durableClient = this.factory.create('publisher');
    this.publisher = new Publisher(
      this.client,
      this.scripts,
      config.keyPrefix,
      config.maxLen,
      config.partitions,
      (keys, dueAt) => this.movers.wake(keys.delay, dueAt),
      this.durableClient && {
        client: this.durableClient,
        replicas: config.waitForReplicas,
        timeoutMs: config.waitForReplicasTimeoutMs,
      },
    );
    this.replies = {
      openReplyChannel: (onReply) => this.openReplyChannel(onReply),
      sendReply: (address, envelope, context) =>
        sendReply(this.client, address, envelope, context, this.config.replyTtlMs),
    };
  }

  /** Connects the command connection (CONNECTION after `connectTimeoutMs`). */
  static async create(config: RedisConfig, logger: Logger): Promise<RedisTransport> {
    const transport = new RedisTransport(config, logger);
    await transport.factory.connect(transport.client, 'command');
    if (transport.durableClient) {
      try {
        await transport.factory.connect(transport.durableClient, 'publisher');
      } catch (error) {
        transport.client.disconnect();
        throw error;
      }
    }
    return transport;
  }

  publish(envelopes: readonly OutgoingEnvelope[], context: TransportPublishContext): Promise<void> {
    return this.publisher.publish(envelopes, context);
  }

  async subscribe(request: SubscribeRequest, deliver: DeliverFn): Promise<TransportSubscription> {
    const subscription = new RedisSubscription(request, deliver, {
      client: this.client,
      scripts: this.scripts,
      factory: this.factory,
      config: this.config,
      logger: this.logger,
      movers: this.movers,
      trimmer: this.trimmer,
    });
    try {
      await this.withConnectDeadline(subscription.start(), `subscribing ${request.group}`);
    } catch (error) {
      await subscription.stop().catch(() => {});
      throw error;
    }
    this.subscriptions.add(subscription);
    return subscription;
  }

  inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    return this.command(`inspecting`, () =>
      inspectRedis(this.client, this.scripts, this.config.keyPrefix, query, this.config.partitions),
    );
  }

  /** One create at a time (see ensureRedisGroup): a subscription may ask for several types at once. */
  ensureGroup(type: string, group: string): Promise<void> {
    const create = () =>
      this.command(`creating group ${group} on ${type}`, () =>
        ensureRedisGroup(this.client, this.config.keyPrefix, type, group),
      );
    const created = this.ensuring.then(create, create);
    this.ensuring = created.catch(() => {});
    return created;
  }

  peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    return this.command(`reading ${type} for ${group}`, () =>
      peekRedis(this.client, this.config.keyPrefix, type, group, limit, this.config.partitions),
    );
  }

  /** A read-only or idempotent command sequence, bounded like a subscribe's setup. */
  private async command<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new PlugmqError('CLOSED', 'the Redis transport is closed');
    return this.withConnectDeadline(work(), what);
  }

  async health(): Promise<{ ok: boolean; details?: Record<string, unknown> }> {
    let ok = !this.closed;
    let error: string | undefined;
    if (ok) {
      try {
        await this.withDeadline(this.client.ping(), HEALTH_TIMEOUT_MS, 'PING');
      } catch (cause) {
        ok = false;
        error = redactCredentials(describeError(cause));
      }
    }
    return {
      ok,
      details: {
        url: this.factory.maskedUrl,
        cluster: this.config.cluster,
        ...(this.config.sentinel ? { sentinelName: this.config.sentinel.name } : {}),
        ...(this.config.waitForReplicas > 0 ? { waitForReplicas: this.config.waitForReplicas } : {}),
        keyPrefix: this.config.keyPrefix,
        status: this.client.status,
        connects: this.connects,
        pendingPublishes: this.publisher.inFlight,
        trimmed: this.trimmer.trimmed,
        ...(error === undefined ? {} : { error }),
      },
    };
  }

  /** Runs one trimming pass now over every consumed type (also runs every `trimIntervalMs`). */
  trimNow(): Promise<number> {
    return this.trimmer.trimAll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.channels].map((channel) => channel.close()));
    await Promise.all([...this.subscriptions].map((subscription) => subscription.stop()));
    await Promise.all([...this.subscriptions].map((subscription) => subscription.closed()));
    this.movers.close();
    this.trimmer.close();
    this.publisher.close();
    await Promise.all(
      [this.client, this.durableClient].map(async (client) => {
        if (!client) return;
        try {
          await this.withDeadline(client.quit(), this.config.connectTimeoutMs, 'QUIT');
        } catch {
          client.disconnect();
        }
      }),
    );
  }

  /** `inspect(manager)` and console.log never show the password. */
  [inspect.custom](): string {
    return `RedisTransport { url: '${this.factory.maskedUrl}', cluster: ${this.config.cluster}, keyPrefix: '${this.config.keyPrefix}' }`;
  }

  toJSON(): Record<string, unknown> {
    return { url: this.factory.maskedUrl, cluster: this.config.cluster, keyPrefix: this.config.keyPrefix };
  }

  private async openReplyChannel(onReply: (envelope: Envelope) => void): Promise<ReplyChannel> {
    const channel = new ListReplyChannel(
      this.config.keyPrefix,
      this.factory,
      this.client,
      this.logger,
      onReply,
    );
    channel.start();
    this.channels.add(channel);
    return {
      address: channel.address,
      close: async () => {
        this.channels.delete(channel);
        await channel.close();
      },
    };
  }

  private withConnectDeadline<T>(work: Promise<T>, what: string): Promise<T> {
    return this.withDeadline(work, this.config.connectTimeoutMs, what).catch((error: unknown) => {
      if (error instanceof PlugmqError) throw error;
      throw new PlugmqError(
        'CONNECTION',
        `${what} on Redis failed: ${redactCredentials(describeError(error))}`,
        {
          cause: error,
        },
      );
    });
  }

  private withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
    return withDeadline(
      work,
      ms,
      () => new PlugmqError('CONNECTION', `${what} got no answer from Redis within ${ms} ms`),
    );
  }
}
