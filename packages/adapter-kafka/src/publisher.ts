import {
  abortReason,
  delay,
  describeError,
  type Logger,
  PlugmqError,
  redactCredentials,
  type TransportPublishContext,
} from '@plugmq/core';
import type { KafkaClient, OutgoingRecord } from './client.js';

interface PendingPublish {
  readonly records: readonly OutgoingRecord[];
  readonly context: TransportPublishContext;
  resolve(): void;
  reject(error: unknown): void;
}

/** Records per produce request; bounded so one request stays well under the broker's limits. */
const MAX_RECORDS_PER_SEND = 2_000;
const RETRY_BACKOFF_MS = [100, 250, 500, 1_000];

/**
 * Coalesces every publish made while a send is in flight (or in the same tick) into one
 * produce request. kafkajs has no linger, so without this each `publish` would be its own
 * round trip; with it, throughput no longer depends on the caller batching. One send is in
 * flight at a time, which the idempotent producer needs for ordering anyway.
 */
export class Publisher {
  private queue: PendingPublish[] = [];
  private running = false;
  private closed = false;

  constructor(
    private readonly client: KafkaClient,
    private readonly logger: Logger,
  ) {}

  publish(records: readonly OutgoingRecord[], context: TransportPublishContext): Promise<void> {
    if (this.closed) return Promise.reject(new PlugmqError('CLOSED', 'the kafka transport is closed'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records, context, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Sends until the queue is empty. Only one drain loop runs at a time. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.take();
        await this.sendWithRetry(batch);
      }
    } finally {
      this.running = false;
      // A publish may have arrived between the last check and the flag reset.
      if (this.queue.length > 0 && !this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    }
  }

  private take(): PendingPublish[] {
    let count = 0;
    let i = 0;
    while (
      i < this.queue.length &&
      (i === 0 || count + this.queue[i]!.records.length <= MAX_RECORDS_PER_SEND)
    ) {
      count += this.queue[i]!.records.length;
      i++;
    }
    return this.queue.splice(0, i);
  }

  private async sendWithRetry(batch: PendingPublish[]): Promise<void> {
    for (let attempt = 0; batch.length > 0; attempt++) {
      const records = batch.length === 1 ? batch[0]!.records : batch.flatMap((pending) => pending.records);
      try {
        await this.client.send(records);
        for (const pending of batch) pending.resolve();
        return;
      } catch (error) {
        if (!this.client.isRetriable(error) || this.closed) {
          const failure = new PlugmqError(
            'PUBLISH_FAILED',
            `kafka rejected the publish: ${redactCredentials(describeError(error))}`,
            { cause: error },
          );
          for (const pending of batch) pending.reject(failure);
          return;
        }
        this.logger.warn(
          { err: redactCredentials(describeError(error)), attempt, messages: records.length },
          'plugmq: kafka publish failed; retrying until the publish deadline',
        );
        if (this.client.isFatalProducerError(error)) {
          await this.client.resetProducer().catch(() => {});
        }
        // Only now look at the deadlines: reading `signal` arms a timer, which a healthy publish never needs.
        batch = batch.filter((pending) => {
          const { signal } = pending.context;
          if (!signal.aborted) return true;
          pending.reject(abortReason(signal, 'publish'));
          return false;
        });
        if (batch.length === 0) return;
        await this.backoff(batch, RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]!);
      }
    }
  }

  /** Sleeps, waking early when every waiting publish has been aborted. */
  private async backoff(batch: PendingPublish[], ms: number): Promise<void> {
    const all = new AbortController();
    let live = batch.length;
    const onAbort = () => {
      if (--live === 0) all.abort();
    };
    for (const pending of batch) pending.context.signal.addEventListener('abort', onAbort, { once: true });
    await delay(ms, all.signal);
    for (const pending of batch) pending.context.signal.removeEventListener('abort', onAbort);
  }

  close(): void {
    this.closed = true;
  }
}
