import { PlugmqError } from './errors.js';
import type { BatchConsumeOptions, BatchContext, BatchHandler, HandlerContext, Message } from './types.js';
import { invalidArgument, isInteger } from './validation.js';

/** `consumeBatch` defaults: at most 100 messages, gathered for at most 100 ms. */
export const DEFAULT_MAX_BATCH_SIZE = 100;
export const DEFAULT_MAX_WAIT_MS = 100;
const MAX_BATCH_SIZE_LIMIT = 10_000;

export interface BatchSettings {
  readonly maxBatchSize: number;
  readonly maxWaitMs: number;
}

/** Checks the batch-only options; the rest are checked as consume's. */
export function resolveBatchSettings(options: BatchConsumeOptions | undefined): BatchSettings {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument(
      'options.group',
      'a non-empty string (consumeBatch needs options with a group)',
      options,
    );
  }
  const { maxBatchSize = DEFAULT_MAX_BATCH_SIZE, maxWaitMs = DEFAULT_MAX_WAIT_MS } = options;
  if (!isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > MAX_BATCH_SIZE_LIMIT) {
    throw invalidArgument(
      'options.maxBatchSize',
      `an integer from 1 to ${MAX_BATCH_SIZE_LIMIT}`,
      maxBatchSize,
    );
  }
  if (!isInteger(maxWaitMs) || maxWaitMs < 0) {
    throw invalidArgument('options.maxWaitMs', 'an integer >= 0', maxWaitMs);
  }
  const concurrency = (options as { concurrency?: unknown }).concurrency;
  if (concurrency !== undefined) {
    throw invalidArgument(
      'options.concurrency',
      'absent: consumeBatch runs one batch at a time per subscription (size batches with maxBatchSize)',
      concurrency,
    );
  }
  return { maxBatchSize, maxWaitMs };
}

interface Entry {
  readonly message: Message<unknown>;
  readonly arrivedAt: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Turns a batch handler into the per-message handler of an ordinary subscription. Each delivery's
 * handler call waits until its batch was handled, then resolves (ack) or rejects (retry or
 * dead-letter, by the subscription's usual rules), so every driver gets batches from core's one
 * delivery path. One batch runs at a time and the next is handed over only once the previous one
 * is settled: together with delivery order inside a batch, this keeps per-key order across batches.
 */
export class Batcher {
  private gathering: Entry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private due = false;
  private running = false;
  /** Every call of one subscription carries the same context; the timer reuses the latest. */
  private lastContext: HandlerContext = { signal: new AbortController().signal };

  constructor(
    private readonly settings: BatchSettings,
    private readonly handler: BatchHandler<unknown>,
  ) {}

  /** Deliveries the subscription must allow outstanding: a running batch and a full one gathering. */
  get concurrency(): number {
    return this.settings.maxBatchSize * 2;
  }

  readonly handle = (message: Message<unknown>, context: HandlerContext): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      this.gathering.push({ message, arrivedAt: Date.now(), resolve, reject });
      if (this.gathering.length >= this.settings.maxBatchSize) this.due = true;
      else if (this.gathering.length === 1) this.arm(this.settings.maxWaitMs);
      this.dispatch(context);
    });

  private arm(ms: number): void {
    clearTimeout(this.timer);
    if (ms <= 0) {
      this.due = true;
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due = true;
      this.dispatch(this.lastContext);
    }, ms);
  }

  private dispatch(context: HandlerContext): void {
    this.lastContext = context;
    if (this.running || !this.due || this.gathering.length === 0) return;
    const batch = this.gathering.splice(0, this.settings.maxBatchSize);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = false;
    const next = this.gathering[0];
    if (next !== undefined) {
      if (this.gathering.length >= this.settings.maxBatchSize) this.due = true;
      else this.arm(next.arrivedAt + this.settings.maxWaitMs - Date.now());
    }
    this.running = true;
    void this.run(batch, context).finally(() => {
      this.running = false;
      this.dispatch(this.lastContext);
    });
  }

  private async run(batch: Entry[], context: HandlerContext): Promise<void> {
    const messages = batch.map((entry) => entry.message);
    const failures = new Map<Message<unknown>, unknown>();
    let settled = false;
    const batchContext: BatchContext<unknown> = {
      signal: context.signal,
      fail: (message, error) => {
        if (settled) {
          throw new PlugmqError(
            'INVALID_ARGUMENT',
            'fail(message) was called after the batch handler returned',
          );
        }
        const member = messages.includes(message) ? message : messages.find((m) => m.id === message?.id);
        if (member === undefined) {
          throw new PlugmqError('INVALID_ARGUMENT', 'fail(message) needs a message of this batch');
        }
        failures.set(member, error ?? new Error('failed by the batch handler'));
      },
    };
    try {
      await this.handler(messages, batchContext);
    } catch (error) {
      settled = true;
      for (const entry of batch) entry.reject(failures.get(entry.message) ?? error);
      return;
    }
    settled = true;
    for (const entry of batch) {
      if (failures.has(entry.message)) entry.reject(failures.get(entry.message));
      else entry.resolve();
    }
  }
}
