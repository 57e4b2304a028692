import { randomUUID } from 'node:crypto';
import { PlugmqError } from './errors.js';
import type { HandlerMiddleware } from './middleware.js';
import { delay } from './signals.js';
import type { HandlerContext, Message } from './types.js';
import { invalidArgument } from './validation.js';

/** What `claim` found: the claim is now the caller's, another run holds it, or the id was handled. */
export type IdempotencyClaim = 'claimed' | 'running' | 'done';

/**
 * Where `withIdempotency` remembers handled message ids. Every method is atomic per key; a store
 * shared by processes (Redis) makes a group's consumers in all of them skip each other's work.
 */
export interface IdempotencyStore {
  /**
   * Takes `key` for one handler run when nobody holds it (the value `token`, expiring after
   * `lockTtlMs`); otherwise says whether a run holds it ('running') or it was handled ('done').
   */
  claim(key: string, token: string, lockTtlMs: number): Promise<IdempotencyClaim>;
  /** Marks `key` handled, remembered for `ttlMs`. */
  complete(key: string, ttlMs: number): Promise<void>;
  /** Frees `key` if `token` still holds it (the run failed: a retry may run the handler again). */
  release(key: string, token: string): Promise<void>;
}

export interface IdempotencyOptions {
  readonly store: IdempotencyStore;
  /** The consumer group: ids are remembered per group and message type. */
  readonly group: string;
  /** How long a handled id is remembered (default 24 h): duplicates later than this run again. */
  readonly ttlMs?: number;
  /**
   * How long a claim holds while the handler runs (default 60 s). Longer than the slowest handler
   * (bound it with `withTimeout` listed before this middleware, so a timed-out run that goes on
   * keeps its claim): a claim that expires lets a duplicate run at the same time, and a run that
   * crashed blocks its id's redeliveries this long.
   */
  readonly lockTtlMs?: number;
}

export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_IDEMPOTENCY_LOCK_TTL_MS = 60_000;
/** How often a duplicate waiting on a running claim looks again. */
const CLAIM_POLL_MS = 50;

/**
 * Handler middleware that runs the handler at most once per message id and group (while the id is
 * remembered): a duplicate delivery of a handled id is acked without running the handler. A
 * duplicate that arrives while the first run is in progress waits for its outcome: skipped when
 * the run succeeds, run when it failed (its claim is released, so the retry can run too).
 *
 * Key: `<group>:<type>:<id>` (a message id given at publish may repeat across types).
 */
export function withIdempotency(options: IdempotencyOptions): HandlerMiddleware {
  const { store, group } = validateIdempotencyOptions(options);
  const ttlMs = options.ttlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
  const lockTtlMs = options.lockTtlMs ?? DEFAULT_IDEMPOTENCY_LOCK_TTL_MS;
  return (next) => async (message: Message<unknown>, context: HandlerContext) => {
    const key = `${group}:${message.type}:${message.id}`;
    const token = randomUUID();
    if (!(await claimOrWait(store, key, token, lockTtlMs, context.signal))) return;
    try {
      await next(message, context);
    } catch (error) {
      // A release that fails leaves the claim to expire after lockTtlMs; the handler's error matters.
      await store.release(key, token).catch(() => {});
      throw error;
    }
    // A store that fails here fails the delivery: it is retried, and runs again once the claim expires.
    await store.complete(key, ttlMs);
  };
}

/** True once the claim is ours; false when the id was handled (skip). */
async function claimOrWait(
  store: IdempotencyStore,
  key: string,
  token: string,
  lockTtlMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  // Another run's claim expires within lockTtlMs: waiting longer means the store misbehaves.
  const deadline = Date.now() + lockTtlMs + 1_000;
  for (;;) {
    const state = await store.claim(key, token, lockTtlMs);
    if (state === 'claimed') return true;
    if (state === 'done') return false;
    if (signal.aborted || Date.now() >= deadline) {
      throw new PlugmqError(
        'TIMEOUT',
        `message ${key} is still being handled by another delivery; it will be retried`,
      );
    }
    await delay(CLAIM_POLL_MS, signal);
  }
}

function validateIdempotencyOptions(options: IdempotencyOptions): IdempotencyOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('withIdempotency(options)', 'an object with store and group', options);
  }
  const { store, group, ttlMs, lockTtlMs } = options;
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof store.claim !== 'function' ||
    typeof store.complete !== 'function' ||
    typeof store.release !== 'function'
  ) {
    throw invalidArgument(
      'withIdempotency options.store',
      'an IdempotencyStore (claim, complete, release), e.g. new MemoryIdempotencyStore()',
      store,
    );
  }
  if (typeof group !== 'string' || group.length === 0) {
    throw invalidArgument('withIdempotency options.group', 'the consumer group (a non-empty string)', group);
  }
  for (const [field, value] of [
    ['ttlMs', ttlMs],
    ['lockTtlMs', lockTtlMs],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw invalidArgument(`withIdempotency options.${field}`, 'a positive integer (milliseconds)', value);
    }
  }
  return options;
}

const DONE = 'done';
/** Writes between sweeps of expired entries: bounds the map without a timer. */
const SWEEP_EVERY = 1_024;

/**
 * An in-process IdempotencyStore: enough for one consumer process (tests, the memory driver, a
 * single worker). Consumers of a group in several processes need a shared store (Redis).
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private writes = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Entries held, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  async claim(key: string, token: string, lockTtlMs: number): Promise<IdempotencyClaim> {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) return entry.value === DONE ? 'done' : 'running';
    this.write(key, token, lockTtlMs);
    return 'claimed';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.write(key, DONE, ttlMs);
  }

  async release(key: string, token: string): Promise<void> {
    if (this.entries.get(key)?.value === token) this.entries.delete(key);
  }

  private write(key: string, value: string, ttlMs: number): void {
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    if (++this.writes % SWEEP_EVERY === 0) {
      const now = this.now();
      for (const [k, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(k);
    }
  }
}
