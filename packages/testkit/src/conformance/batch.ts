import type { BatchContext, Message } from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, expectPlugmqError, sleep, waitFor } from './helpers.js';

interface BatchLog<T> {
  /** Each handler call's messages, in call order. */
  readonly batches: Message<T>[][];
  readonly calledAt: number[];
  /** When each call started (performance.now()), parallel to `batches`. */
  readonly startedAt: number[];
  /** When each call's handler settled (performance.now()), parallel to `batches`. */
  readonly endedAt: number[];
  handler(messages: readonly Message<T>[], context: BatchContext<T>): Promise<void>;
  all(): Message<T>[];
  waitForMessages(count: number, timeoutMs: number): Promise<void>;
}

function batchLog<T>(
  onBatch?: (messages: readonly Message<T>[], context: BatchContext<T>) => void | Promise<void>,
): BatchLog<T> {
  const batches: Message<T>[][] = [];
  const calledAt: number[] = [];
  const startedAt: number[] = [];
  const endedAt: number[] = [];
  const all = () => batches.flat();
  return {
    batches,
    calledAt,
    startedAt,
    endedAt,
    all,
    handler: async (messages, context) => {
      const index = batches.push([...messages]) - 1;
      calledAt.push(Date.now());
      startedAt.push(performance.now());
      try {
        if (onBatch) await onBatch(messages, context);
      } finally {
        endedAt[index] = performance.now();
      }
    },
    waitForMessages: (count, timeoutMs) =>
      waitFor(() => all().length >= count, timeoutMs, `${count} messages in batches`),
  };
}

/** consumeBatch: bounded batches, maxWaitMs, per-message settling, whole-batch failure, key order. */
export function batchScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);
  const fastRetry = (maxAttempts: number) => ({
    maxAttempts,
    initialDelayMs: 20,
    factor: 2,
    maxDelayMs: 100,
  });
  const items = (type: string, count: number, key?: (i: number) => string) =>
    Array.from({ length: count }, (_, i) => ({ type, body: i, options: key ? { key: key(i) } : {} }));

  test('consumeBatch hands over at most maxBatchSize messages per call, each message once', async () => {
    const manager = await env.create();
    const type = env.type();
    const log = batchLog<number>(() => sleep(env.ms(20)));
    await manager.consumeBatch(type, log.handler, {
      group: env.group(),
      maxBatchSize: 5,
      maxWaitMs: env.ms(200),
    });
    await manager.publishBatch(items(type, 23));
    await log.waitForMessages(23, env.patience);
    await sleep(env.quiet);
    const sizes = log.batches.map((batch) => batch.length);
    expect(Math.max(...sizes), `batch sizes ${sizes.join(',')}`).toBe(5);
    expect(
      log
        .all()
        .map((message) => message.body)
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: 23 }, (_, i) => i));
  });

  test('a partial batch is handed over once maxWaitMs has passed, not held for more', async () => {
    const manager = await env.create();
    const type = env.type();
    const log = batchLog<number>();
    const maxWaitMs = env.ms(400);
    await manager.consumeBatch(type, log.handler, { group: env.group(), maxBatchSize: 50, maxWaitMs });
    // Timed from before the publish: the first message can arrive (and start the wait) before
    // publishBatch resolves, which on a replicated broker waits for the slowest acknowledgement.
    const published = Date.now();
    await manager.publishBatch(items(type, 3));
    await log.waitForMessages(3, maxWaitMs + env.patience);
    expect(log.batches[0], 'the three messages gathered into one batch').toHaveLength(3);
    // The batch waited for more (it was not handed over at once) but not much beyond maxWaitMs.
    expect(log.calledAt[0]! - published).toBeGreaterThanOrEqual(maxWaitMs - env.ms(100));
    expect(log.calledAt[0]! - published).toBeLessThan(maxWaitMs + env.ms(2_000));
  });

  test('context.fail settles one message: it alone is retried, then dead-lettered; the rest are acked', async () => {
    const manager = await env.create();
    const type = env.type();
    const dead = collector<number>();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    const log = batchLog<number>((messages, context) => {
      for (const message of messages) {
        if (message.body === 1) context.fail(message, new Error('row 1 violates a constraint'));
        if (message.body === 2 && message.attempt === 1) context.fail(message, new Error('transient'));
      }
    });
    await manager.consumeBatch(type, log.handler, {
      group: env.group(),
      maxBatchSize: 10,
      maxWaitMs: env.ms(100),
      retry: fastRetry(3),
    });
    await manager.publishBatch(items(type, 4));
    const [letter] = await dead.waitForCount(1, env.patience);
    await sleep(env.quiet);
    const attemptsOf = (body: number) =>
      log
        .all()
        .filter((message) => message.body === body)
        .map((message) => message.attempt);
    expect(attemptsOf(0)).toEqual([1]);
    expect(attemptsOf(1)).toEqual([1, 2, 3]);
    expect(attemptsOf(2)).toEqual([1, 2]);
    expect(attemptsOf(3)).toEqual([1]);
    expect(letter?.body).toBe(1);
    expect(letter?.headers['x-plugmq-error']).toContain('row 1 violates a constraint');
    expect(letter?.headers['x-plugmq-attempts']).toBe('3');
    await dead.expectNoMore(1, 0);
  });

  test('a batch handler that throws fails every message of the batch, each retried on its own', async () => {
    const manager = await env.create();
    const type = env.type();
    const dead = collector<number>();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    const log = batchLog<number>((messages) => {
      if (messages.some((message) => message.attempt === 1)) throw new Error('bulk insert failed');
    });
    // Where the three arrive apart (a Kafka cluster: one fetch per partition leader), a retry may
    // share a batch with another message's first attempt and fail again with it: each message
    // can fail at most three times, so four attempts always end in success.
    await manager.consumeBatch(type, log.handler, {
      group: env.group(),
      maxBatchSize: 10,
      maxWaitMs: env.ms(100),
      retry: fastRetry(4),
    });
    await manager.publishBatch(items(type, 3));
    await log.waitForMessages(6, env.patience);
    await sleep(env.quiet);
    for (const body of [0, 1, 2]) {
      const attempts = log
        .all()
        .filter((message) => message.body === body)
        .map((message) => message.attempt);
      expect(attempts.length, `attempts of message ${body}: ${attempts}`).toBeGreaterThanOrEqual(2);
      expect(attempts, `attempts of message ${body}`).toEqual(attempts.map((_, i) => i + 1));
    }
    expect(dead.messages).toHaveLength(0);
  });

  test('same key keeps publish order inside and across batches (orderedByKey)', async (context) => {
    env.requires(context, 'orderedByKey');
    const manager = await env.create();
    const type = env.type();
    const log = batchLog<number>(() => sleep(env.ms(10)));
    await manager.consumeBatch(type, log.handler, {
      group: env.group(),
      maxBatchSize: 4,
      maxWaitMs: env.ms(20),
    });
    const count = 36;
    await manager.publishBatch(items(type, count, (i) => `k${i % 3}`));
    await log.waitForMessages(count, env.patience);
    for (const key of ['k0', 'k1', 'k2']) {
      const bodies = log
        .all()
        .filter((message) => message.key === key)
        .map((message) => message.body);
      expect(bodies, `order of ${key}`).toEqual([...bodies].sort((a, b) => a - b));
      expect(bodies).toHaveLength(count / 3);
      // A later batch holding this key starts only after the batch before it settled.
      const holding = log.batches.flatMap((batch, index) =>
        batch.some((m) => m.key === key) ? [index] : [],
      );
      for (let i = 1; i < holding.length; i++) {
        const [previous, next] = [holding[i - 1]!, holding[i]!];
        expect(
          log.startedAt[next],
          `batch ${next} of ${key} started before batch ${previous} settled`,
        ).toBeGreaterThanOrEqual(log.endedAt[previous]!);
      }
    }
    // Three keys, batches of four: a full batch holds one key twice, so same-key messages do share batches.
    expect(log.batches.some((batch) => batch.length === 4)).toBe(true);
  });

  test('consumeBatch refuses a bad maxBatchSize, maxWaitMs or concurrency with INVALID_ARGUMENT', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const handler = async () => {};
    await expectPlugmqError(
      () => manager.consumeBatch(type, handler, { group, maxBatchSize: 0 }),
      'INVALID_ARGUMENT',
      'maxBatchSize',
    );
    await expectPlugmqError(
      () => manager.consumeBatch(type, handler, { group, maxWaitMs: -1 }),
      'INVALID_ARGUMENT',
      'maxWaitMs',
    );
    await expectPlugmqError(
      () => manager.consumeBatch(type, handler, { group, concurrency: 2 } as never),
      'INVALID_ARGUMENT',
      'concurrency',
    );
  });
}
