import {
  delay,
  describeError,
  type Logger,
  OverdueWatch,
  OverdueWatched,
  PlugmqError,
  redactCredentials,
  type TransportPublishContext,
} from '@plugmq/core';
import type { KafkaClient, OutgoingRecord } from './client.js';

class PendingPublish extends OverdueWatched {
  constructor(
    readonly records: readonly OutgoingRecord[],
    context: TransportPublishContext,
    readonly resolve: () => void,
    readonly reject: (error: unknown) => void,
  ) {
    super(context);
  }
}

/** Records per produce request; bounded so one request stays well under the broker's limits. */
const MAX_RECORDS_PER_SEND = 2_000;
const RETRY_BACKOFF_MS = [100, 250, 500, 1_000];

/**
 * Coalesces every publish made while a send is in flight (or in the same tick) into one
 * produce request. kafkajs has no linger, so without this each `publish` would be its own
 * round trip; with it, throughput no longer depends on the caller batching. One send is in
 * flight at a time, which the idempotent producer needs for ordering anyway.
 *
 * A publish rejects at its deadline (publishTimeoutMs or the caller's signal) even while its
 * send is still in flight or queued behind one: kafkajs' own connect and request retries to a
 * broker that is down take far longer. Such a publish may still be stored if that send succeeds
 * later (at least once: a caller that retries may make a duplicate, never a loss); nothing
 * resolves unacknowledged.
 */
export class Publisher {
  private queue: PendingPublish[] = [];
  private running = false;
  private closed = false;
  /** Every publish not yet settled, queued or in a send; deadlines attach once overdue. */
  private readonly waiting = new OverdueWatch<PendingPublish>('publish to kafka', (pending, error) =>
    pending.reject(error),
  );

  constructor(
    private readonly client: KafkaClient,
    private readonly logger: Logger,
  ) {}

  publish(records: readonly OutgoingRecord[], context: TransportPublishContext): Promise<void> {
    if (this.closed) return Promise.reject(new PlugmqError('CLOSED', 'the kafka transport is closed'));
    return new Promise<void>((resolve, reject) => {
      const pending = new PendingPublish(records, context, resolve, reject);
      this.waiting.add(pending);
      this.queue.push(pending);
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
        // One event-loop turn before the next batch: the callers this send just resolved publish
        // again and join it. Without it the next send goes out with only what queued during the
        // last one, and a steady publisher settles into two half-sized produce requests per window.
        if (this.queue.length > 0) await nextTurn();
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
    // Publishes whose deadline passed while they were queued were rejected already: not sent.
    // No send is in flight here, so every watched publish is in the queue.
    const noneExpired = this.waiting.size === this.queue.length;
    const batch = this.queue.splice(0, i);
    return noneExpired ? batch : batch.filter((pending) => this.waiting.has(pending));
  }

  private async sendWithRetry(batch: PendingPublish[]): Promise<void> {
    for (let attempt = 0; batch.length > 0; attempt++) {
      const records = batch.length === 1 ? batch[0]!.records : recordsOf(batch);
      try {
        await this.client.send(records);
        for (const pending of batch) if (this.waiting.settle(pending)) pending.resolve();
        return;
      } catch (error) {
        if (!this.client.isRetriable(error) || this.closed) {
          const failure = new PlugmqError(
            'PUBLISH_FAILED',
            `kafka rejected the publish: ${redactCredentials(describeError(error))}`,
            { cause: error },
          );
          for (const pending of batch) if (this.waiting.settle(pending)) pending.reject(failure);
          return;
        }
        this.logger.warn(
          { err: redactCredentials(describeError(error)), attempt, messages: records.length },
          'plugmq: kafka publish failed; retrying until the publish deadline',
        );
        if (this.client.isFatalProducerError(error)) {
          await this.client.resetProducer().catch(() => {});
        }
        // The watch rejected those whose deadline passed meanwhile: they are not sent again.
        this.waiting.armAll();
        batch = batch.filter((pending) => this.waiting.has(pending) && !pending.context.signal.aborted);
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
    this.waiting.close();
  }
}

/** The batch's records in publish order (a plain loop: flatMap costs more on this hot path). */
function recordsOf(batch: readonly PendingPublish[]): OutgoingRecord[] {
  const records: OutgoingRecord[] = [];
  for (const pending of batch) for (const record of pending.records) records.push(record);
  return records;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
