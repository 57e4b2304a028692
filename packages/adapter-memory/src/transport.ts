import type {
  DeliverFn,
  Envelope,
  InProcessBodies,
  Logger,
  OutgoingEnvelope,
  SubscribeRequest,
  Transport,
  TransportHooks,
  TransportInspection,
  TransportInspectQuery,
  TransportPublishContext,
  TransportSubscription,
} from '@plugmq/core/driver';
import { PlugmqError } from '@plugmq/core/driver';
import { inspectMemory, peekMemory } from './inspect.js';
import { MemoryBroker } from './memory-broker.js';
import type { MemoryConfig } from './options.js';

interface SharedBroker {
  readonly broker: MemoryBroker;
  users: number;
}

/** Brokers by namespace, shared by the managers of one process; dropped when the last one closes. */
const brokers = new Map<string, SharedBroker>();

function acquire(config: MemoryConfig, logger: Logger): MemoryBroker {
  let shared = brokers.get(config.namespace);
  if (!shared) {
    shared = {
      broker: new MemoryBroker({ bufferSize: config.bufferSize, historySize: config.historySize }),
      users: 0,
    };
    brokers.set(config.namespace, shared);
  } else if (
    shared.broker.options.bufferSize !== config.bufferSize ||
    shared.broker.options.historySize !== config.historySize
  ) {
    logger.warn(
      { namespace: config.namespace },
      'plugmq: memory namespace already exists; its first bufferSize/historySize apply',
    );
  }
  shared.users++;
  return shared.broker;
}

export class MemoryTransport implements Transport {
  readonly inProcessBodies: InProcessBodies;
  private readonly broker: MemoryBroker;
  private closed = false;

  constructor(
    private readonly config: MemoryConfig,
    private readonly logger: Logger,
    private readonly hooks: TransportHooks,
  ) {
    this.broker = acquire(config, logger);
    this.inProcessBodies = config.serialize ? 'json-text' : 'reference';
  }

  publish(
    envelopes: readonly OutgoingEnvelope[],
    context: TransportPublishContext,
  ): Promise<void> | undefined {
    return this.broker.publish(envelopes, context, this.hooks);
  }

  async subscribe(request: SubscribeRequest, deliver: DeliverFn): Promise<TransportSubscription> {
    return this.broker.subscribe(request, deliver, this.config.prefetch);
  }

  async inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    this.assertOpen();
    return inspectMemory(this.broker, query);
  }

  /** Synchronous: consume reaches subscribe in the same turn (a publish right after it is routed). */
  ensureGroup(type: string, group: string): void {
    this.assertOpen();
    this.broker.ensureGroup(type, group);
  }

  async peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    this.assertOpen();
    return peekMemory(this.broker, type, group, limit);
  }

  private assertOpen(): void {
    if (this.closed) throw new PlugmqError('CLOSED', 'the memory transport is closed');
  }

  async health(): Promise<{ ok: boolean; details?: Record<string, unknown> }> {
    return { ok: !this.closed, details: { namespace: this.config.namespace, ...this.broker.stats() } };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const shared = brokers.get(this.config.namespace);
    if (!shared || shared.broker !== this.broker || --shared.users > 0) return;
    brokers.delete(this.config.namespace);
    const lost = this.broker.clear();
    if (lost.buffered > 0 || lost.delayed > 0) {
      this.logger.warn(
        { namespace: this.config.namespace, ...lost },
        'plugmq: the last memory manager of this namespace closed with messages still queued; they lived in memory only',
      );
    }
  }
}
