import { Batcher, resolveBatchSettings } from './batch.js';
import { type CatalogHolder, type CatalogLike, checkPublishBody, SchemaRegistry } from './catalog.js';
import { type Codec, CodecRegistry } from './codec.js';
import type { PlugmqConfig } from './config.js';
import { EnvelopeBuilder } from './envelope-builder.js';
import { EnvelopeSender } from './envelope-sender.js';
import { describeError, PlugmqError } from './errors.js';
import { ManagerEvents, type SubscriptionInfo } from './events.js';
import { healthReport } from './health.js';
import { type ManagerMiddleware, type PublishHook, sendWithHooks, wrapHandler } from './hooks.js';
import { BrokerInspector } from './inspect.js';
import type { DeadLetters, Inspection, InspectQuery } from './inspection.js';
import type { Logger } from './logger.js';
import { RequestReply } from './request-reply.js';
import { resolveRetryPolicy } from './retry.js';
import { ManagedSubscription } from './subscription.js';
import type { Envelope, OutgoingEnvelope, Transport, TransportHooks } from './transport.js';
import type {
  BatchConsumeOptions,
  BatchHandler,
  Capabilities,
  ConsumeOptions,
  Handler,
  HealthReport,
  Message,
  PublishBatchItem,
  PublishOptions,
  QueueManager,
  RequestOptions,
  RespondOptions,
  Subscription,
} from './types.js';
import { validateConsumeArguments } from './validation.js';

export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface TransportManagerOptions {
  readonly driver: string;
  readonly config: PlugmqConfig;
  readonly logger: Logger;
  /** Codecs beside JSON and raw bytes, chosen by content type on delivery. */
  readonly codecs?: readonly Codec[];
}

/**
 * Core's QueueManager: the whole public contract over a driver's small Transport. Every driver
 * gets validation, codecs, concurrency, retry, dead-lettering and request/reply from here.
 */
export class TransportQueueManager implements QueueManager, CatalogHolder {
  readonly driver: string;
  readonly capabilities: Capabilities;
  /** Instrumentation: `manager.events.on(listener)`; free when nobody listens. */
  readonly events: ManagerEvents;
  readonly hooks: TransportHooks;
  private transport!: Transport;
  private readonly logger: Logger;
  private readonly codecs: CodecRegistry;
  private readonly closeTimeoutMs: number;
  private readonly subscriptions = new Set<ManagedSubscription>();
  private readonly unroutedByType = new Map<string, number>();
  private readonly requestReply: RequestReply;
  private closing: Promise<void> | undefined;
  private readonly envelopes: EnvelopeBuilder;
  private readonly sender: EnvelopeSender;
  /** Registered by `use`; undefined (not empty) when none, so publish tests one field. */
  private publishHooks: PublishHook[] | undefined;
  private handleHooks: NonNullable<ManagerMiddleware['handle']>[] | undefined;
  /** Catalog schemas by type; empty (one size test per publish) until `useCatalog`. */
  private readonly schemas = new SchemaRegistry();
  /** inspect() and `deadLetters`: the broker's side, read from any process. */
  private readonly inspector: BrokerInspector;

  constructor(capabilities: Capabilities, options: TransportManagerOptions) {
    this.driver = options.driver;
    this.capabilities = Object.freeze({ ...capabilities });
    this.logger = options.logger;
    this.codecs = new CodecRegistry(options.codecs);
    this.events = new ManagerEvents(options.driver);
    this.envelopes = new EnvelopeBuilder(this.driver, this.capabilities, this.codecs, () => this.transport);
    this.sender = new EnvelopeSender(
      () => this.transport,
      options.config.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
    );
    this.closeTimeoutMs = options.config.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.hooks = { unrouted: (envelope) => this.countUnrouted(envelope) };
    this.requestReply = new RequestReply(this, {
      codecs: this.codecs,
      logger: this.logger,
      defaultTimeoutMs: options.config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      sendEnvelope: async (envelope, signal) => this.sendEnvelopes([envelope], signal, envelope.type),
      transport: () => this.transport,
    });
    this.inspector = new BrokerInspector({
      driver: this.driver,
      transport: () => this.transport,
      codecs: this.codecs,
      send: (envelope, signal) => this.sendEnvelopes([envelope], signal, envelope.type),
      assertOpen: () => this.assertOpen(),
    });
  }

  get deadLetters(): DeadLetters {
    return this.inspector.deadLetters;
  }

  inspect(query?: InspectQuery): Promise<Inspection> {
    return this.inspector.inspect(query);
  }

  /** Called once by `createTransportManager` before the manager is handed out. */
  attach(transport: Transport): void {
    this.transport = transport;
  }

  /**
   * Adds manager-wide middleware: `publish` runs for every later publish (it may add headers, e.g.
   * W3C `traceparent`), `handle` wraps the handler of every later consume. Returns a remover.
   */
  use(middleware: ManagerMiddleware): () => void {
    const { publish, handle } = middleware;
    if (publish) this.publishHooks = [...(this.publishHooks ?? []), publish];
    if (handle) this.handleHooks = [...(this.handleHooks ?? []), handle];
    return () => {
      const publishHooks = this.publishHooks?.filter((hook) => hook !== publish);
      const handleHooks = this.handleHooks?.filter((hook) => hook !== handle);
      this.publishHooks = publishHooks?.length ? publishHooks : undefined;
      this.handleHooks = handleHooks?.length ? handleHooks : undefined;
    };
  }

  /**
   * Checks every later publish and delivery of the catalog's types against their schemas (running
   * subscriptions included). `catalog.attach(queue)` calls this and returns the typed manager.
   */
  useCatalog(catalog: CatalogLike): void {
    this.schemas.add(catalog);
  }

  /** The live subscriptions of this manager, for dashboards. */
  subscriptionInfo(): SubscriptionInfo[] {
    return [...this.subscriptions].map((subscription) => subscription.info());
  }

  publish<T>(type: string, body: T, options?: PublishOptions): Promise<string> {
    try {
      const schema = this.schemas.size === 0 ? undefined : this.schemas.get(type);
      if (schema !== undefined) {
        const checking = checkPublishBody(schema, type, body, 'body');
        if (checking !== undefined) return checking.then(() => this.publishChecked(type, body, options));
      }
      return this.publishChecked(type, body, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Throws synchronously on bad arguments; `publish` turns that into a rejection. */
  private publishChecked(type: string, body: unknown, options: PublishOptions | undefined): Promise<string> {
    const envelope = this.buildEnvelope(type, body, options, 'options');
    if (this.publishHooks !== undefined) {
      return this.publishHooked([envelope], options?.signal, type).then((ids) => ids[0] as string);
    }
    const id = envelope.id;
    const stored = () => {
      this.events.published(type, id);
      return id;
    };
    return this.sender.send([envelope], options?.signal, type, stored) ?? Promise.resolve(stored());
  }

  async publishBatch<T>(items: PublishBatchItem<T>[]): Promise<string[]> {
    if (!Array.isArray(items)) {
      throw new PlugmqError('INVALID_ARGUMENT', 'items must be an array of { type, body, options }');
    }
    if (items.length === 0) return [];
    const envelopes = items.map((item, index) => {
      if (typeof item !== 'object' || item === null) {
        throw new PlugmqError(
          'INVALID_ARGUMENT',
          `items[${index}] must be an object { type, body, options }`,
        );
      }
      return this.buildEnvelope(
        item.type,
        item.body,
        item.options,
        `items[${index}].options`,
        `items[${index}].type`,
      );
    });
    if (this.schemas.size !== 0) await this.checkBatch(items);
    const signal = items.find((item) => item.options?.signal)?.options?.signal;
    if (this.publishHooks !== undefined) {
      return this.publishHooked(envelopes, signal, `a batch of ${envelopes.length}`);
    }
    await this.sendEnvelopes(envelopes, signal, `a batch of ${envelopes.length}`);
    if (this.events.enabled)
      for (const envelope of envelopes) this.events.published(envelope.type, envelope.id);
    return envelopes.map((envelope) => envelope.id);
  }

  consume<T>(types: string | string[], handler: Handler<T>, options: ConsumeOptions): Promise<Subscription> {
    return this.subscribe(types, handler as Handler<unknown>, options, options?.concurrency ?? 1, true);
  }

  async consumeBatch<T>(
    types: string | string[],
    handler: BatchHandler<T>,
    options: BatchConsumeOptions,
  ): Promise<Subscription> {
    const settings = resolveBatchSettings(options);
    validateConsumeArguments(types, handler, options);
    const batcher = new Batcher(settings, handler as BatchHandler<unknown>);
    return this.subscribe(types, batcher.handle, options, batcher.concurrency, false);
  }

  private async subscribe(
    types: string | string[],
    handler: Handler<unknown>,
    options: ConsumeOptions,
    concurrency: number,
    serialKeys: boolean,
  ): Promise<Subscription> {
    this.assertOpen();
    const list = validateConsumeArguments(types, handler, options);
    const startFrom = options.startFrom ?? 'latest';
    if (startFrom === 'earliest' && !this.capabilities.newGroupReceivesOldMessages) {
      throw new PlugmqError(
        'UNSUPPORTED',
        `the ${this.driver} driver cannot honour options.startFrom 'earliest' (new groups do not receive old messages); use 'latest'`,
      );
    }
    if (options.signal?.aborted) throw new PlugmqError('CLOSED', 'options.signal is already aborted');
    const wrapped = this.handleHooks
      ? wrapHandler(handler, this.handleHooks, { driver: this.driver, types: list, group: options.group })
      : handler;
    const subscription = new ManagedSubscription(
      {
        types: list,
        group: options.group,
        concurrency,
        retry: resolveRetryPolicy(options.retry),
        deadLetter: options.deadLetter ?? '',
        serialKeys,
      },
      wrapped,
      {
        codecs: this.codecs,
        schemas: this.schemas,
        logger: this.logger,
        events: this.events,
        closeTimeoutMs: this.closeTimeoutMs,
        publishDeadLetter: async (envelope) => this.sendEnvelopes([envelope], undefined, envelope.type),
        onClosed: (closed) => {
          if (this.subscriptions.delete(closed)) this.events.subscription('unsubscribed', closed.info());
        },
      },
    );
    this.subscriptions.add(subscription);
    try {
      const keeping = this.inspector.keepDeadLetters(list, options.deadLetter);
      if (keeping !== undefined) await keeping;
      const transportSubscription = await this.transport.subscribe(
        { types: list, group: options.group, concurrency, startFrom },
        subscription.deliver,
      );
      subscription.attach(transportSubscription);
    } catch (error) {
      this.subscriptions.delete(subscription);
      throw error;
    }
    if (this.closing) {
      await subscription.close();
      throw new PlugmqError('CLOSED', 'the queue manager was closed while consume was starting');
    }
    options.signal?.addEventListener('abort', () => void subscription.close(), { once: true });
    this.events.subscription('subscribed', subscription.info());
    return subscription;
  }

  async request<Req, Res>(type: string, body: Req, options?: RequestOptions): Promise<Res> {
    this.assertOpen();
    return this.requestReply.request<Req, Res>(type, body, options);
  }

  async respond<Req, Res>(
    type: string,
    handler: (message: Message<Req>) => Res | Promise<Res>,
    options?: RespondOptions,
  ): Promise<Subscription> {
    this.assertOpen();
    return this.requestReply.respond(type, handler, options);
  }

  async health(): Promise<HealthReport> {
    if (this.closing) return { ok: false, driver: this.driver, details: { closed: true } };
    return healthReport(this.driver, this.transport, this.subscriptions, this.unroutedByType);
  }

  /** True once close() was called: liveness probes read it without a broker round trip. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.inspector.deadLetters.close();
    await this.requestReply.close();
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
    await this.sender.flush();
    try {
      await this.transport.close();
    } catch (error) {
      this.logger.warn(
        { driver: this.driver, err: describeError(error) },
        'plugmq: closing the transport failed',
      );
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new PlugmqError('CLOSED', 'the queue manager is closed; create a new one');
  }

  private buildEnvelope(
    type: string,
    body: unknown,
    options: PublishOptions | undefined,
    optionsField: string,
    typeField = 'type',
  ): OutgoingEnvelope {
    this.assertOpen();
    return this.envelopes.build(type, body, options, optionsField, typeField);
  }

  /** Every item of a batch is checked (in parallel for async schemas) before any is sent. */
  private async checkBatch(items: readonly PublishBatchItem<unknown>[]): Promise<void> {
    const pending: Promise<void>[] = [];
    items.forEach((item, index) => {
      const schema = this.schemas.get(item.type);
      if (schema === undefined) return;
      const checking = checkPublishBody(schema, item.type, item.body, `items[${index}].body`);
      if (checking !== undefined) pending.push(checking);
    });
    await Promise.all(pending);
  }

  /** publish/publishBatch when hooks are registered: hooks see (and may extend) each message's headers. */
  private publishHooked(built: OutgoingEnvelope[], signal: AbortSignal | undefined, what: string) {
    return sendWithHooks(built, this.publishHooks ?? [], this.logger, async (envelopes) => {
      await this.sendEnvelopes(envelopes, signal, what);
      if (this.events.enabled)
        for (const envelope of envelopes) this.events.published(envelope.type, envelope.id);
    });
  }

  /** Every publish path (publish, batch, dead-letter, reply) goes through the sender. */
  sendEnvelopes(
    envelopes: readonly OutgoingEnvelope[],
    signal: AbortSignal | undefined,
    what: string,
  ): Promise<void> | undefined {
    return this.sender.send(envelopes, signal, what);
  }

  private countUnrouted(envelope: Envelope): void {
    const count = this.unroutedByType.get(envelope.type) ?? 0;
    this.unroutedByType.set(envelope.type, count + 1);
    if (count === 0) {
      this.logger.warn(
        { driver: this.driver, type: envelope.type },
        'plugmq: message published to a type with no group; counted as unrouted (use mandatory: true to reject instead)',
      );
    }
    this.events.unrouted(envelope);
  }
}

/** Builds the QueueManager for a driver: the transport is created with hooks into the manager. */
export async function createTransportManager(
  capabilities: Capabilities,
  options: TransportManagerOptions,
  createTransport: (hooks: TransportHooks) => Promise<Transport>,
): Promise<TransportQueueManager> {
  const manager = new TransportQueueManager(capabilities, options);
  manager.attach(await createTransport(manager.hooks));
  return manager;
}
