import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  applyMiddleware,
  createQueueManager,
  describeError,
  type HandlerMiddleware,
  type IdempotencyClaim,
  type IdempotencyOptions,
  type IdempotencyStore,
  isRetryable,
  type Logger,
  MemoryIdempotencyStore,
  type Message,
  PlugmqError,
  type QueueManager,
  type RetryOptions,
  registerDriver,
  resolveRetryPolicy,
  UnrecoverableError,
  withIdempotency,
  withTimeout,
} from '../src/kit.js';

const toClose: QueueManager[] = [];
beforeAll(() => registerDriver(memoryDriver));
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((m) => m.close()));
});

const message = (id: string, type = 'orders'): Message<unknown> => ({
  id,
  type,
  body: null,
  headers: {},
  timestamp: 0,
  attempt: 1,
});
const context = () => ({ signal: new AbortController().signal });

describe('types', () => {
  it('UnrecoverableError, shouldRetry and the idempotency API have the documented shapes', () => {
    expectTypeOf(UnrecoverableError).constructorParameters.toEqualTypeOf<
      [message: string, options?: { cause?: unknown }]
    >();
    expectTypeOf(new UnrecoverableError('x')).toMatchTypeOf<Error>();
    expectTypeOf<NonNullable<RetryOptions['shouldRetry']>>().toEqualTypeOf<
      (error: unknown, message: Message<unknown>) => boolean
    >();
    expectTypeOf(withIdempotency).parameter(0).toEqualTypeOf<IdempotencyOptions>();
    expectTypeOf(withIdempotency).returns.toEqualTypeOf<HandlerMiddleware>();
    expectTypeOf<IdempotencyOptions['store']>().toEqualTypeOf<IdempotencyStore>();
    expectTypeOf<IdempotencyClaim>().toEqualTypeOf<'claimed' | 'running' | 'done'>();
    expectTypeOf<IdempotencyStore['claim']>().returns.toEqualTypeOf<Promise<IdempotencyClaim>>();
    expectTypeOf(new MemoryIdempotencyStore()).toMatchTypeOf<IdempotencyStore>();
  });
});

describe('UnrecoverableError and isRetryable', () => {
  it('is branded: instanceof holds for a copy from another build of core', () => {
    const foreign = Object.defineProperty(new Error('x'), Symbol.for('plugmq.UnrecoverableError'), {
      value: true,
    });
    expect(foreign).toBeInstanceOf(UnrecoverableError);
    expect(new Error('y')).not.toBeInstanceOf(UnrecoverableError);
  });

  it('describeError names the cause, so the dead-letter header carries it', () => {
    const error = new UnrecoverableError('bad sku', { cause: new PlugmqError('DECODE_FAILED', 'no sku') });
    expect(describeError(error)).toBe('UnrecoverableError: bad sku; cause: DECODE_FAILED: no sku');
    expect(describeError(new UnrecoverableError('plain'))).toBe('UnrecoverableError: plain');
  });

  it('a predicate that throws counts as retry and is reported', () => {
    const heard: unknown[] = [];
    const policy = resolveRetryPolicy({
      shouldRetry: () => {
        throw new Error('buggy predicate');
      },
    });
    expect(isRetryable(policy, new Error('x'), message('a'), (e) => heard.push(e))).toBe(true);
    expect(heard).toHaveLength(1);
    expect(isRetryable(policy, new UnrecoverableError('x'), message('a'))).toBe(false);
  });

  it('a throwing shouldRetry logs a warning and the message is retried', async () => {
    const warnings: string[] = [];
    const logger: Logger = {
      trace: () => {},
      debug: () => {},
      info: () => {},
      warn: (_fields: unknown, text?: string) => void warnings.push(String(text)),
      error: () => {},
    } as unknown as Logger;
    const manager = await createQueueManager({ driver: 'memory', logger });
    toClose.push(manager);
    const attempts: number[] = [];
    await manager.consume(
      'predicate.throws',
      (m) => {
        attempts.push(m.attempt);
        if (m.attempt === 1) throw new Error('first');
      },
      {
        group: 'g',
        retry: {
          initialDelayMs: 10,
          shouldRetry: () => {
            throw new Error('buggy');
          },
        },
      },
    );
    await manager.publish('predicate.throws', 1);
    for (let i = 0; i < 200 && attempts.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(attempts).toEqual([1, 2]);
    expect(warnings.some((w) => w.includes('shouldRetry threw'))).toBe(true);
  });
});

describe('withIdempotency', () => {
  it('rejects bad options with INVALID_ARGUMENT naming the field', () => {
    const store = new MemoryIdempotencyStore();
    expect(() => withIdempotency({ store: {} as IdempotencyStore, group: 'g' })).toThrow(/options\.store/);
    expect(() => withIdempotency({ store, group: '' })).toThrow(/options\.group/);
    expect(() => withIdempotency({ store, group: 'g', ttlMs: 0 })).toThrow(/options\.ttlMs/);
    expect(() => withIdempotency({ store, group: 'g', lockTtlMs: 1.5 })).toThrow(/options\.lockTtlMs/);
  });

  it('a claim left by a crashed run blocks a duplicate until lockTtlMs, then the duplicate runs', async () => {
    const store = new MemoryIdempotencyStore();
    await store.claim('g:orders:m-1', 'crashed-run', 150);
    let runs = 0;
    const handler = applyMiddleware(
      () => {
        runs++;
      },
      withIdempotency({ store, group: 'g', lockTtlMs: 150 }),
    );
    const started = Date.now();
    await handler(message('m-1'), context());
    expect(runs).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    await handler(message('m-1'), context());
    expect(runs, 'handled ids are skipped').toBe(1);
  });

  it('withTimeout listed first: a timed-out run that goes on keeps its claim, so its retry is skipped', async () => {
    const store = new MemoryIdempotencyStore();
    let effects = 0;
    const handler = applyMiddleware(
      async () => {
        await new Promise((r) => setTimeout(r, 200)); // ignores its signal
        effects++;
      },
      withTimeout(50),
      withIdempotency({ store, group: 'g', lockTtlMs: 5_000 }),
    );
    await expect(handler(message('m-3'), context())).rejects.toThrow(/ran longer than 50 ms/);
    // The retry, after its back-off: the timed-out run finished meanwhile and recorded the id.
    await new Promise((r) => setTimeout(r, 250));
    await handler(message('m-3'), context());
    expect(effects).toBe(1);
  });

  it('a store that fails to claim fails the delivery (so it is retried), without running the handler', async () => {
    const broken: IdempotencyStore = {
      claim: () => Promise.reject(new Error('store down')),
      complete: () => Promise.resolve(),
      release: () => Promise.resolve(),
    };
    let runs = 0;
    const handler = applyMiddleware(
      () => {
        runs++;
      },
      withIdempotency({ store: broken, group: 'g' }),
    );
    await expect(handler(message('m-2'), context())).rejects.toThrow('store down');
    expect(runs).toBe(0);
  });

  it('the memory store sweeps expired entries, so it does not grow without bound', async () => {
    let now = 0;
    const store = new MemoryIdempotencyStore(() => now);
    for (let i = 0; i < 2_000; i++) await store.complete(`k-${i}`, 10);
    now = 100;
    for (let i = 0; i < 1_100; i++) await store.complete(`n-${i}`, 10);
    expect(store.size).toBeLessThan(2_000);
  });
});
