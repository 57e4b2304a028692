import { inspect } from 'node:util';
import {
  type DeliverFn,
  describeError,
  type Envelope,
  type Logger,
  type MessageSizeLimit,
  type OutgoingEnvelope,
  PlugmqError,
  redactCredentials,
  type SubscribeRequest,
  type Transport,
  type TransportHooks,
  type TransportInspection,
  type TransportInspectQuery,
  type TransportPublishContext,
  type TransportSubscription,
} from '@plugmq/core/driver';
import type pg from 'pg';
import { connectionError, Listener, openPool } from './connection.js';
import { PostgresInspector } from './inspect.js';
import type { PostgresConfig } from './options.js';
import { Publisher } from './publisher.js';
import { startTrimming } from './retention.js';
import { PostgresSubscription } from './subscription.js';
import { tables } from './topology.js';

/**
 * The PostgreSQL Transport: a pool for statements and one LISTEN connection that wakes the
 * subscriptions of a group when a row for it becomes claimable. Request/reply goes through core's
 * reply type (a group per manager), so there is no `replies` fast path here.
 */
export class PostgresTransport implements Transport {
  private readonly publisher: Publisher;
  private readonly inspector: PostgresInspector;
  private readonly subscriptions = new Set<PostgresSubscription>();
  private readonly stopTrimming: () => void;
  private closed = false;

  readonly messageSizeLimit: MessageSizeLimit;
  private constructor(
    private readonly config: PostgresConfig,
    private readonly logger: Logger,
    private readonly pool: pg.Pool,
    private readonly listener: Listener,
    hooks: TransportHooks,
  ) {
    this.messageSizeLimit = {
      driver: 'postgres',
      maxBytes: config.maxMessageBytes,
      brokerSetting: "PostgreSQL's 1 GB field limit (it cannot be raised)",
    };
    this.publisher = new Publisher(pool, config.schema, config.retentionMs > 0, hooks);
    this.inspector = new PostgresInspector(pool, config.schema);
    this.stopTrimming =
      config.retentionMs > 0 ? startTrimming(pool, config.schema, config.retentionMs, logger) : () => {};
  }

  /** Connects, creates the tables if missing and LISTENs (CONNECTION if any of it fails). */
  static async create(
    config: PostgresConfig,
    logger: Logger,
    hooks: TransportHooks,
  ): Promise<PostgresTransport> {
    const pool = await openPool(config, logger);
    let transport: PostgresTransport | undefined;
    const listener = new Listener(
      config,
      tables(config.schema).channel,
      logger,
      (group) => transport?.wake(group),
      () => transport?.wake(),
    );
    try {
      await listener.start();
    } catch (error) {
      await Promise.all([listener.close(), pool.end().catch(() => {})]);
      throw connectionError(config.url, error, 'LISTEN');
    }
    transport = new PostgresTransport(config, logger, pool, listener, hooks);
    return transport;
  }

  publish(envelopes: readonly OutgoingEnvelope[], context: TransportPublishContext): Promise<void> {
    return this.publisher.publish(envelopes, context);
  }

  async subscribe(request: SubscribeRequest, deliver: DeliverFn): Promise<TransportSubscription> {
    const subscription = new PostgresSubscription(request, deliver, {
      pool: this.pool,
      config: this.config,
      logger: this.logger,
    });
    try {
      await subscription.start();
    } catch (error) {
      subscription.close();
      throw connectionError(this.config.url, error, `subscribing ${request.group}`);
    }
    this.subscriptions.add(subscription);
    return {
      stop: async () => {
        await subscription.stop();
      },
    };
  }

  inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    return this.statement('inspecting', () => this.inspector.inspect(query));
  }

  ensureGroup(type: string, group: string): Promise<void> {
    return this.statement(`creating group ${group} on ${type}`, () =>
      this.inspector.ensureGroup(type, group),
    );
  }

  peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    return this.statement(`reading ${type} for ${group}`, () => this.inspector.peek(type, group, limit));
  }

  private async statement<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new PlugmqError('CLOSED', 'the PostgreSQL transport is closed');
    try {
      return await work();
    } catch (error) {
      throw connectionError(this.config.url, error, what);
    }
  }

  private wake(group?: string): void {
    for (const subscription of this.subscriptions) {
      if (group === undefined || subscription.group === group) subscription.wake();
    }
  }

  async health(): Promise<{ ok: boolean; details?: Record<string, unknown> }> {
    let error: string | undefined;
    try {
      await this.pool.query({ text: 'SELECT 1', query_timeout: 2_000 } as pg.QueryConfig);
    } catch (cause) {
      error = redactCredentials(describeError(cause));
    }
    return {
      ok: !this.closed && error === undefined,
      details: {
        url: redactCredentials(this.config.url),
        schema: this.config.schema,
        subscriptions: this.subscriptions.size,
        connections: this.pool.totalCount,
        ...(error === undefined ? {} : { error }),
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTrimming();
    for (const subscription of this.subscriptions) subscription.close();
    await Promise.all([this.listener.close(), this.pool.end().catch(() => {})]);
  }

  /** `inspect(manager)` and console.log never show the password. */
  [inspect.custom](): string {
    return `PostgresTransport { url: '${redactCredentials(this.config.url)}', schema: '${this.config.schema}' }`;
  }

  toJSON(): Record<string, unknown> {
    return { url: redactCredentials(this.config.url), schema: this.config.schema };
  }
}
