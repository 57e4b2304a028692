import {
  DEAD_LETTER_HEADERS,
  defaultDeadLetterType,
  describeError,
  type Logger,
  type Message,
  type PlugmqEvent,
  type QueueManager,
  type Subscription,
  type SubscriptionInfo,
  silentLogger,
} from '@plugmq/core/driver';

/** One dead-lettered message as the dashboard keeps it. */
export interface DeadLetterRecord {
  id: string;
  /** The dead-letter type it was read from. */
  type: string;
  /** `x-plugmq-original-type`: where replay sends it. */
  originalType: string | undefined;
  error: string | undefined;
  attempts: number | undefined;
  key: string | undefined;
  headers: Record<string, string>;
  /** The decoded body; raw bytes as base64 text (see `bodyEncoding`). */
  body: unknown;
  bodyEncoding: 'json' | 'base64';
  timestamp: number;
  receivedAt: number;
  /** Set when the body could not be decoded: such a record cannot be replayed from here. */
  undecodable?: boolean;
}

export interface DeadLetterSummary {
  type: string;
  stored: number;
  /** Received since start (stored + replayed + evicted). */
  received: number;
  replayed: number;
  /** Dropped from this store (not from the broker) because the store was full. */
  evicted: number;
}

export interface DeadLetterStoreOptions {
  /** The consumer group the dashboard reads dead-letter types with (default 'plugmq.dashboard'). */
  readonly group?: string;
  /** Records kept per dead-letter type; the oldest are evicted first (default 500). */
  readonly maxPerType?: number;
  readonly logger?: Logger;
}

const DLQ_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(DEAD_LETTER_HEADERS));

interface Bucket {
  records: Map<string, DeadLetterRecord>;
  subscription?: Subscription;
  received: number;
  replayed: number;
  evicted: number;
}

/**
 * Reads dead-letter types through a consumer group of its own and keeps a bounded, in-memory copy
 * of each message so the page can browse and replay them. Reading through its own group leaves
 * every other group's copy where it is (dead letters are never taken from the application); the
 * price is that the store starts empty in every process, holds only what arrived since it started
 * (plus the type's history where the driver offers `startFrom: 'earliest'`), and replays from this
 * copy. Which types: those named in options, the dead-letter type of every consumer the manager
 * starts (learned from its events, so usually before the first failure), and any type a
 * `dead-lettered` event names.
 */
export class DeadLetterStore {
  readonly group: string;
  private readonly maxPerType: number;
  private readonly logger: Logger;
  private readonly buckets = new Map<string, Bucket>();
  private readonly watching = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly queue: QueueManager,
    options: DeadLetterStoreOptions = {},
  ) {
    this.group = options.group ?? 'plugmq.dashboard';
    this.maxPerType = options.maxPerType ?? 500;
    this.logger = options.logger ?? silentLogger;
  }

  /** Watches dead-letter types named by events: consumers' targets and actual dead-letterings. */
  readonly record = (event: PlugmqEvent): void => {
    if (event.kind === 'subscribed') {
      for (const type of deadLetterTypesOf(event.subscription, this.group)) void this.watch(type);
    } else if (event.kind === 'dead-lettered' && event.group !== this.group) {
      void this.watch(event.deadLetter);
    } else if (event.kind === 'dropped' && event.group === this.group) {
      // Our reader drops what it cannot decode (deadLetter: false); show that it was there.
      this.store(event.type, {
        id: event.id,
        type: event.type,
        originalType: undefined,
        error: 'the body could not be decoded by the dashboard; read it with a raw consumer',
        attempts: undefined,
        key: undefined,
        headers: {},
        body: undefined,
        bodyEncoding: 'json',
        timestamp: Date.now(),
        receivedAt: Date.now(),
        undecodable: true,
      });
    }
  };

  /** Dead-letter types of the consumers already running when the dashboard starts. */
  async watchExisting(): Promise<void> {
    const types = this.queue.subscriptionInfo().flatMap((info) => deadLetterTypesOf(info, this.group));
    await Promise.all(types.map((type) => this.watch(type)));
  }

  /** Starts reading `type` (idempotent); resolves once the reader is live. */
  watch(type: string): Promise<void> {
    let watching = this.watching.get(type);
    if (!watching) {
      watching = this.subscribe(type);
      this.watching.set(type, watching);
    }
    return watching;
  }

  private async subscribe(type: string): Promise<void> {
    const bucket = this.bucket(type);
    if (this.closed) return;
    try {
      bucket.subscription = await this.queue.consume(type, (message) => this.store(type, toRecord(message)), {
        group: this.group,
        concurrency: 16,
        deadLetter: false,
        // Where the broker keeps history for a new group, read what was dead-lettered before us.
        ...(this.queue.capabilities.newGroupReceivesOldMessages ? { startFrom: 'earliest' as const } : {}),
      });
      if (this.closed) await bucket.subscription.close();
    } catch (error) {
      this.watching.delete(type);
      this.logger.warn(
        { type, group: this.group, err: describeError(error) },
        'plugmq dashboard: cannot read dead-letter type',
      );
    }
  }

  summaries(): DeadLetterSummary[] {
    return [...this.buckets.entries()]
      .map(([type, bucket]) => ({
        type,
        stored: bucket.records.size,
        received: bucket.received,
        replayed: bucket.replayed,
        evicted: bucket.evicted,
      }))
      .sort((a, b) => a.type.localeCompare(b.type));
  }

  /** The newest first, at most `limit`. */
  list(type: string, limit = 200): DeadLetterRecord[] {
    const records = [...(this.buckets.get(type)?.records.values() ?? [])];
    return records.reverse().slice(0, limit);
  }

  get(type: string, id: string): DeadLetterRecord | undefined {
    return this.buckets.get(type)?.records.get(id);
  }

  /**
   * Republishes one message to its original type (same id, key, body and application headers,
   * without the x-plugmq-* dead-letter headers) and forgets it here. If it fails again it comes
   * back through the dead-letter type like any other.
   */
  async replay(type: string, id: string): Promise<boolean> {
    const bucket = this.buckets.get(type);
    const record = bucket?.records.get(id);
    if (!bucket || !record || !record.originalType || record.undecodable) return false;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(record.headers)) {
      if (!DLQ_HEADER_NAMES.has(name)) headers[name] = value;
    }
    headers['x-plugmq-replayed-from'] = type;
    const body =
      record.bodyEncoding === 'base64'
        ? new Uint8Array(Buffer.from(String(record.body), 'base64'))
        : record.body;
    await this.queue.publish(record.originalType, body, {
      id: record.id,
      headers,
      ...(record.key === undefined ? {} : { key: record.key }),
    });
    bucket.records.delete(id);
    bucket.replayed++;
    this.logger.info(
      { type: record.originalType, id, deadLetter: type },
      'plugmq dashboard: dead letter replayed to its original type',
    );
    return true;
  }

  /** Replays every replayable stored message of `type`, oldest first; returns how many. */
  async replayAll(type: string): Promise<number> {
    let replayed = 0;
    for (const record of [...(this.buckets.get(type)?.records.values() ?? [])]) {
      if (await this.replay(type, record.id)) replayed++;
    }
    return replayed;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.watching.values()]);
    await Promise.all([...this.buckets.values()].map((bucket) => bucket.subscription?.close()));
  }

  private store(type: string, record: DeadLetterRecord): void {
    const bucket = this.bucket(type);
    bucket.records.delete(record.id);
    bucket.records.set(record.id, record);
    bucket.received++;
    if (bucket.records.size > this.maxPerType) {
      const oldest = bucket.records.keys().next().value;
      if (oldest !== undefined) bucket.records.delete(oldest);
      bucket.evicted++;
    }
  }

  private bucket(type: string): Bucket {
    let bucket = this.buckets.get(type);
    if (!bucket) {
      bucket = { records: new Map(), received: 0, replayed: 0, evicted: 0 };
      this.buckets.set(type, bucket);
    }
    return bucket;
  }
}

/** The dead-letter types a subscription sends to (none for dead-letter readers or deadLetter: false). */
function deadLetterTypesOf(info: SubscriptionInfo, ownGroup: string): string[] {
  if (info.group === ownGroup || info.deadLetter === false) return [];
  if (info.deadLetter) return [info.deadLetter];
  return info.types.filter((type) => !type.endsWith('.dlq')).map(defaultDeadLetterType);
}

function toRecord(message: Message<unknown>): DeadLetterRecord {
  const attempts = Number(message.headers[DEAD_LETTER_HEADERS.attempts]);
  return {
    id: message.id,
    type: message.type,
    originalType: message.headers[DEAD_LETTER_HEADERS.originalType],
    error: message.headers[DEAD_LETTER_HEADERS.error],
    attempts: Number.isFinite(attempts) ? attempts : undefined,
    key: message.key,
    headers: { ...message.headers },
    ...(message.body instanceof Uint8Array
      ? { body: Buffer.from(message.body).toString('base64'), bodyEncoding: 'base64' as const }
      : { body: message.body, bodyEncoding: 'json' as const }),
    timestamp: message.timestamp,
    receivedAt: Date.now(),
  };
}
