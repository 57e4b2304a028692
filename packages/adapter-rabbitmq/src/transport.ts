import {
  DEFAULT_PUBLISH_TIMEOUT_MS,
  type DeliverFn,
  type Envelope,
  type Logger,
  type MessageSizeLimit,
  nextAttempt,
  type OutgoingEnvelope,
  type ReplyChannel,
  type ReplyTransport,
  type SubscribeRequest,
  type Transport,
  type TransportHooks,
  type TransportInspection,
  type TransportInspectQuery,
  type TransportPublishContext,
  type TransportSubscription,
} from '@plugmq/core/driver';
import { ConnectionManager } from './connection.js';
import { lazyDeadline, pause } from './deadline.js';
import { RabbitInspector } from './inspect.js';
import { defaultPrefetch, type RabbitMqConfig } from './options.js';
import { PartitionedSubscription } from './partitioned-subscription.js';
import { declarePartitionExchange, PARTITION_HEADER, PartitionRouter, partitionsOf } from './partitions.js';
import { type Outgoing, Publisher } from './publisher.js';
import { QueueStatus, UnroutedQueue } from './queue-status.js';
import { DUE_HEADER, LogReplay, logQueueName } from './replay.js';
import { DirectReplyChannel } from './replies.js';
import { RabbitSubscription, type SubscriptionDeps } from './subscription.js';
import {
  declareWaitQueue,
  parseWaitRoute,
  type Topology,
  topologyFor,
  WAIT_HEADER,
  type WaitKind,
  waitQueueName,
  waitRoute,
  waitWindow,
} from './topology.js';
import { envelopeToPublishOptions } from './wire.js';

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The RabbitMQ Transport: core's QueueManager drives it; see topology.ts for what it declares. */
export class RabbitMqTransport implements Transport {
  readonly replies: ReplyTransport;
  /** States of the group queues this manager consumes: publishes of their types consult it. */
  private readonly status = new QueueStatus();
  private readonly topology: Topology;
  private readonly connections: ConnectionManager;
  private readonly publisher: Publisher;
  /** Wait queues declared on the current connection, of `waitQueuesWindow` (older ones are not used). */
  private readonly waitQueues = new Set<string>();
  private waitQueuesWindow = -1;
  private readonly publishTimeoutMs: number;
  private readonly inspector: RabbitInspector;
  /** With `partitions`: picks each publish's partition; undefined otherwise (today's path). */
  private readonly router: PartitionRouter | undefined;
  /** With `retentionMs`: each type's log and the replays of new groups; undefined otherwise. */
  private readonly replay: LogReplay | undefined;
  /** Aborts work that outlives a call (a replay) when the manager closes. */
  private readonly lifetime = new AbortController();
  private closed = false;

  readonly messageSizeLimit: MessageSizeLimit;
  private constructor(
    private readonly config: RabbitMqConfig,
    private readonly logger: Logger,
    hooks: TransportHooks,
  ) {
    this.messageSizeLimit = {
      driver: 'rabbitmq',
      maxBytes: config.maxMessageBytes,
      brokerSetting: "the broker's max_message_size",
    };
    this.topology = topologyFor(config.exchange);
    this.connections = new ConnectionManager(config, this.topology, logger);
    this.inspector = new RabbitInspector(this.connections, this.topology, config);
    this.publishTimeoutMs = config.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    this.publisher = new Publisher(
      logger,
      {
        unrouted: (envelope) => hooks.unrouted(envelope),
        resend: (outgoing) => this.redeclareWaitQueue(outgoing),
        refusal: (outgoing, returned) =>
          outgoing.exchange === this.topology.exchange
            ? this.status.refusal(outgoing.envelope.type, returned)
            : undefined,
        blocked: () => this.connections.blocked,
      },
      config.confirmStallMs,
      config.maxLength !== undefined,
    );
    this.router = config.partitions > 0 ? new PartitionRouter(config.partitions) : undefined;
    this.replay =
      config.retentionMs > 0
        ? new LogReplay(
            this.connections,
            this.topology,
            config.retentionMs,
            config.partitions,
            (envelopes, queue, signal) =>
              this.publisher.send(
                envelopes.map((envelope) => this.outgoing(envelope, '', queue, 'reject')),
                { signal },
              ),
            logger,
          )
        : undefined;
    this.connections.use({
      connected: async () => {},
      disconnected: () => {
        this.waitQueues.clear();
        this.router?.forget();
        this.replay?.forget();
      },
    });
    this.connections.use(new UnroutedQueue(this.topology, config.queueType, logger));
    this.replies = {
      openReplyChannel: (onReply) => this.openReplyChannel(onReply),
      // Not mandatory: the broker treats amq.rabbitmq.reply-to.* as routed to no queue, so a
      // mandatory reply comes back as basic.return although the requester got it (see replies.ts).
      sendReply: (address, envelope, context) =>
        this.publisher.send([this.outgoing(envelope, '', address, 'reject', undefined, false)], context),
    };
  }

  /** Connects (CONNECTION after `connectTimeoutMs`) and opens the publish channel. */
  static async create(
    config: RabbitMqConfig,
    logger: Logger,
    hooks: TransportHooks,
  ): Promise<RabbitMqTransport> {
    const transport = new RabbitMqTransport(config, logger, hooks);
    await transport.connections.start();
    try {
      await transport.connections.use(transport.publisher);
    } catch (error) {
      await transport.connections.close();
      throw error;
    }
    return transport;
  }

  publish(envelopes: readonly OutgoingEnvelope[], context: TransportPublishContext): Promise<void> {
    let delayed = false;
    // A loop, not map(): no closure per publish.
    let outgoing: Outgoing[] = [];
    for (const envelope of envelopes) {
      if (envelope.delayMs && envelope.delayMs > 0) {
        delayed = true;
        outgoing.push(
          this.outgoing(envelope, this.topology.delayExchange, envelope.type, 'resend', envelope.delayMs),
        );
      } else {
        outgoing.push(
          this.outgoing(
            envelope,
            this.topology.exchange,
            envelope.type,
            envelope.mandatory ? 'reject' : 'unrouted',
          ),
        );
      }
    }
    // Declarations a publish waits for the first time a type is seen: its partition exchange,
    // its log. Undefined on the plain path.
    let preparing: Promise<unknown> | undefined;
    const router = this.router;
    if (router !== undefined) {
      for (const entry of outgoing) {
        const partition = String(router.partitionOf(entry.envelope));
        entry.options.headers = { ...entry.options.headers, [PARTITION_HEADER]: partition };
      }
      preparing = router.ensure(
        envelopes.map((envelope) => envelope.type),
        (type) => this.declarePartitions(type, context.signal),
      );
    }
    const logging = this.replay?.ensure(
      envelopes.map((envelope) => envelope.type),
      context.signal,
    );
    if (logging) preparing = preparing ? Promise.all([preparing, logging]) : logging;
    // A delayed message enters the log when published, not through its wait queue: see replay.ts.
    if (delayed && this.replay) outgoing = this.withLogCopies(outgoing);
    if (preparing !== undefined) {
      return preparing.then(() =>
        delayed ? this.publishDelayed(outgoing, context) : this.publisher.send(outgoing, context),
      );
    }
    if (!delayed) return this.publisher.send(outgoing, context);
    return this.publishDelayed(outgoing, context);
  }

  /**
   * Each delayed publish followed by its copy for the type's log (default exchange, not
   * mandatory), with the same headers (its partition) and the time it falls due.
   */
  private withLogCopies(outgoing: Outgoing[]): Outgoing[] {
    const result: Outgoing[] = [];
    for (const entry of outgoing) {
      result.push(entry);
      const { envelope } = entry;
      const { [WAIT_HEADER]: wait, ...headers } = entry.options.headers ?? {};
      const route = entry.exchange === this.topology.delayExchange ? parseWaitRoute(wait) : undefined;
      if (route === undefined) continue;
      const copy = this.outgoing(
        envelope,
        '',
        logQueueName(this.topology, envelope.type),
        'unrouted',
        undefined,
        false,
      );
      copy.options.headers = { ...headers, [DUE_HEADER]: Date.now() + route.delayMs };
      result.push(copy);
    }
    return result;
  }

  /** The type's partition exchange, so a manager with another `partitions` is refused here. */
  private async declarePartitions(type: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.connections.waitUp(signal);
      try {
        await this.connections.withChannel((channel) =>
          declarePartitionExchange(channel, this.topology, type, this.config.partitions),
        );
        return;
      } catch (error) {
        // A refusal is for good; a connection lost meanwhile is waited out like any publish.
        if (String(error).includes('PRECONDITION_FAILED') || signal.aborted) throw error;
        await pause(100, signal);
      }
    }
  }

  async subscribe(request: SubscribeRequest, deliver: DeliverFn): Promise<TransportSubscription> {
    const deps: SubscriptionDeps = {
      connections: this.connections,
      topology: this.topology,
      logger: this.logger,
      prefetch: this.config.prefetch ?? defaultPrefetch(request.concurrency),
      maxLength: this.config.maxLength,
      queueType: this.config.queueType,
      partitions: this.config.partitions,
      status: this.status,
      retry: (envelope, queue, delayMs) => this.retry(envelope, queue, delayMs),
    };
    const subscription =
      partitionsOf(request.group, deps.partitions) > 0
        ? new PartitionedSubscription(request, deliver, deps)
        : new RabbitSubscription(request, deliver, deps);
    const replays =
      this.replay && request.startFrom === 'earliest'
        ? await this.replay.plan(
            request.group,
            request.types,
            AbortSignal.timeout(this.config.connectTimeoutMs),
          )
        : [];
    await subscription.start(AbortSignal.timeout(this.config.connectTimeoutMs));
    for (const type of request.types) this.inspector.remember(type, request.group);
    for (const step of replays) await this.replay?.run(step, this.lifetime.signal);
    return subscription;
  }

  inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    return this.inspector.inspect(query);
  }

  ensureGroup(type: string, group: string): Promise<void> {
    return this.inspector.ensureGroup(type, group);
  }

  peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    return this.inspector.peek(type, group, limit);
  }

  async health(): Promise<{ ok: boolean; details?: Record<string, unknown> }> {
    const ok = !this.closed && this.connections.isUp && this.publisher.ready;
    return {
      ok,
      details: {
        url: this.connections.currentUrl,
        exchange: this.topology.exchange,
        connected: this.connections.isUp,
        connects: this.connections.connects,
        blocked: this.connections.blocked,
        pendingPublishes: this.publisher.pending,
        publisher: this.publisher.state,
        queues: this.status.snapshot(),
        ...(ok || this.connections.lastError === undefined ? {} : { lastError: this.connections.lastError }),
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lifetime.abort();
    await this.publisher.close();
    await this.connections.close();
  }

  private outgoing(
    envelope: Envelope,
    exchange: string,
    routingKey: string,
    onReturn: Outgoing['onReturn'],
    waitMs?: number,
    mandatory = true,
  ): Outgoing {
    const options = envelopeToPublishOptions(envelope, mandatory);
    if (waitMs !== undefined)
      options.headers = { ...options.headers, [WAIT_HEADER]: waitRoute(waitMs, waitWindow()) };
    return { exchange, routingKey, content: asBuffer(envelope.body), options, envelope, onReturn };
  }

  private async publishDelayed(outgoing: Outgoing[], context: TransportPublishContext): Promise<void> {
    for (const entry of outgoing) {
      if (entry.exchange === this.topology.delayExchange) await this.ensureWaitQueue(entry, context.signal);
    }
    return this.publisher.send(outgoing, context);
  }

  /** The failing group's copy, attempt + 1: straight to its queue, or through the retry wait queue. */
  private async retry(envelope: Envelope, queue: string, delayMs: number): Promise<void> {
    const next: Envelope = nextAttempt(envelope);
    const context = lazyDeadline(this.publishTimeoutMs, `retry of ${envelope.type}`);
    if (delayMs <= 0) {
      await this.publisher.send([this.outgoing(next, '', queue, 'reject')], context);
      return;
    }
    const waiting = this.outgoing(next, this.topology.retryExchange, queue, 'resend', delayMs);
    await this.ensureWaitQueue(waiting, context.signal);
    await this.publisher.send([waiting], context);
  }

  /** Declares the wait queue an outgoing retry or delayed publish is routed to, once per connection. */
  private async ensureWaitQueue(outgoing: Outgoing, signal: AbortSignal): Promise<void> {
    const kind: WaitKind = outgoing.exchange === this.topology.retryExchange ? 'retry' : 'delay';
    const route = parseWaitRoute(outgoing.options.headers?.[WAIT_HEADER]);
    if (route === undefined) throw new Error(`plugmq: ${kind} publish without a ${WAIT_HEADER} route`);
    const { delayMs, window } = route;
    if (window > this.waitQueuesWindow) {
      this.waitQueues.clear();
      this.waitQueuesWindow = window;
    }
    const name = waitQueueName(this.topology, kind, delayMs, window);
    if (this.waitQueues.has(name)) return;
    await this.connections.waitUp(signal);
    await this.connections.withChannel((channel) =>
      declareWaitQueue(channel, this.topology, kind, delayMs, window),
    );
    if (window === this.waitQueuesWindow) this.waitQueues.add(name);
  }

  /**
   * A wait queue returned the message (basic.return): it expired or was deleted. The message is
   * sent again to the current window's queue, declared first.
   */
  private async redeclareWaitQueue(outgoing: Outgoing): Promise<void> {
    const route = parseWaitRoute(outgoing.options.headers?.[WAIT_HEADER]);
    if (route === undefined)
      throw new Error(`plugmq: a returned wait-queue message without a ${WAIT_HEADER} route`);
    const kind: WaitKind = outgoing.exchange === this.topology.retryExchange ? 'retry' : 'delay';
    this.waitQueues.delete(waitQueueName(this.topology, kind, route.delayMs, route.window));
    outgoing.options.headers = {
      ...outgoing.options.headers,
      [WAIT_HEADER]: waitRoute(route.delayMs, waitWindow()),
    };
    await this.ensureWaitQueue(outgoing, AbortSignal.timeout(this.publishTimeoutMs));
  }

  private async openReplyChannel(onReply: (envelope: Envelope) => void): Promise<ReplyChannel> {
    const channel = new DirectReplyChannel(this.connections, this.logger, onReply);
    await channel.start(AbortSignal.timeout(this.config.connectTimeoutMs));
    return channel;
  }
}
