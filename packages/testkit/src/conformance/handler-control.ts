import {
  applyMiddleware,
  MemoryIdempotencyStore,
  type PlugmqEvent,
  type QueueManager,
  UnrecoverableError,
  withIdempotency,
} from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, concurrencyProbe, expectPlugmqError, sleep } from './helpers.js';

/** Events of one kind, by message id, heard on `manager` from now on. */
function eventLog(manager: QueueManager): (kind: PlugmqEvent['kind']) => string[] {
  const events: PlugmqEvent[] = [];
  manager.events.on((event) => events.push(event));
  return (kind) =>
    events.filter((event) => event.kind === kind).map((event) => ('id' in event ? event.id : ''));
}

/** Issue 18: errors that must not be retried, and idempotent consumers. */
export function handlerControlScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);
  const retry = { maxAttempts: 5, initialDelayMs: 20, factor: 2, maxDelayMs: 100 };

  test('an UnrecoverableError dead-letters at once with its cause in the headers: one attempt, counted as dead-lettered, not retried', async () => {
    const manager = await env.create();
    const events = eventLog(manager);
    const type = env.type();
    const attempts = collector(() => {
      throw new UnrecoverableError('card declined', { cause: new Error('gateway said 402') });
    });
    const dead = collector<{ order: number }>();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    await manager.consume(type, attempts.handler, { group: env.group(), retry });
    const id = await manager.publish(type, { order: 7 }, { key: 'k-1', headers: { 'x-trace': 't-7' } });
    const [letter] = await dead.waitForCount(1, env.patience);
    expect(letter?.id).toBe(id);
    expect(letter?.body).toEqual({ order: 7 });
    expect(letter?.key).toBe('k-1');
    expect(letter?.headers['x-trace']).toBe('t-7');
    expect(letter?.headers['x-plugmq-error']).toContain('UnrecoverableError: card declined');
    expect(letter?.headers['x-plugmq-error']).toContain('gateway said 402');
    expect(letter?.headers['x-plugmq-original-type']).toBe(type);
    expect(letter?.headers['x-plugmq-attempts']).toBe('1');
    await attempts.expectNoMore(1, env.quiet);
    expect(attempts.messages.map((message) => message.attempt)).toEqual([1]);
    expect(events('retried')).toEqual([]);
    expect(events('dead-lettered')).toEqual([id]);
  });

  test('retry.shouldRetry(error, message) returning false dead-letters at once; true keeps the normal retries', async () => {
    const manager = await env.create();
    const events = eventLog(manager);
    const type = env.type();
    class ValidationFailed extends Error {}
    const asked: { error: unknown; id: string; attempt: number }[] = [];
    const got = collector<string>((message) => {
      if (message.body === 'permanent') throw new ValidationFailed('field "sku" missing');
      if (message.attempt < 3) throw new Error('transient');
    });
    const dead = collector<string>();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    await manager.consume(type, got.handler, {
      group: env.group(),
      retry: {
        ...retry,
        shouldRetry: (error, message) => {
          asked.push({ error, id: message.id, attempt: message.attempt });
          return !(error instanceof ValidationFailed);
        },
      },
    });
    const permanentId = await manager.publish(type, 'permanent');
    const transientId = await manager.publish(type, 'transient');
    const [letter] = await dead.waitForCount(1, env.patience);
    await got.waitForCount(4, env.patience);
    await got.expectNoMore(4, env.quiet);
    expect(letter?.id).toBe(permanentId);
    expect(letter?.headers['x-plugmq-attempts']).toBe('1');
    expect(letter?.headers['x-plugmq-error']).toContain('field "sku" missing');
    const attemptsOf = (body: string) =>
      got.messages.filter((message) => message.body === body).map((message) => message.attempt);
    expect(attemptsOf('permanent')).toEqual([1]);
    expect(attemptsOf('transient')).toEqual([1, 2, 3]);
    expect(asked.find((call) => call.id === permanentId)?.error).toBeInstanceOf(ValidationFailed);
    expect(asked.filter((call) => call.id === transientId).map((call) => call.attempt)).toEqual([1, 2]);
    expect(events('dead-lettered')).toEqual([permanentId]);
    expect(events('retried')).toEqual([transientId, transientId]);
    await dead.expectNoMore(1, 0);
  });

  test('an UnrecoverableError with deadLetter: false is dropped after one attempt', async () => {
    const manager = await env.create();
    const events = eventLog(manager);
    const type = env.type();
    const got = collector(() => {
      throw new UnrecoverableError('never');
    });
    await manager.consume(type, got.handler, { group: env.group(), retry, deadLetter: false });
    const id = await manager.publish(type, 'x');
    await got.waitForCount(1, env.patience);
    await got.expectNoMore(1, env.quiet);
    expect(events('dropped')).toEqual([id]);
    expect(events('retried')).toEqual([]);
  });

  test('retry.shouldRetry that is not a function is INVALID_ARGUMENT naming the option', async () => {
    const manager = await env.create();
    await expectPlugmqError(
      () =>
        manager.consume(env.type('invalid-retry'), () => {}, {
          group: env.group(),
          retry: { shouldRetry: true as unknown as () => boolean },
        }),
      'INVALID_ARGUMENT',
      'options.retry.shouldRetry',
    );
  });

  test('withIdempotency: the same id delivered three times runs the side effect once; every delivery is acked', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const effects: string[] = [];
    const deliveries = collector<number>();
    const idempotent = applyMiddleware<number>(
      (message) => void effects.push(`${message.id}:${message.body}`),
      withIdempotency({ store: new MemoryIdempotencyStore(), group }),
    );
    await manager.consume<number>(
      type,
      async (message, context) => {
        await deliveries.handler(message, context);
        await idempotent(message, context);
      },
      { group, retry },
    );
    for (let copy = 1; copy <= 3; copy++) await manager.publish(type, copy, { id: 'order-1' });
    await manager.publish(type, 9, { id: 'order-2' });
    await deliveries.waitForCount(4, env.patience);
    await deliveries.expectNoMore(4, env.quiet);
    expect(deliveries.messages.map((message) => message.attempt)).toEqual([1, 1, 1, 1]);
    expect(effects.sort()).toEqual(['order-1:1', 'order-2:9']);
  });

  test('withIdempotency: a failed run releases its claim, so the retry runs the handler; later copies are skipped', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    let runs = 0;
    let effects = 0;
    const handler = applyMiddleware(
      (message) => {
        runs++;
        if (message.attempt === 1) throw new Error('transient');
        effects++;
      },
      withIdempotency({ store: new MemoryIdempotencyStore(), group }),
    );
    const deliveries = collector(handler);
    await manager.consume(type, deliveries.handler, { group, retry });
    await manager.publish(type, 'a', { id: 'payment-1' });
    await deliveries.waitForCount(2, env.patience);
    await manager.publish(type, 'a again', { id: 'payment-1' });
    await deliveries.waitForCount(3, env.patience);
    await deliveries.expectNoMore(3, env.quiet);
    expect(runs).toBe(2);
    expect(effects).toBe(1);
  });

  test('withIdempotency: two deliveries of one id at once (concurrency 4) never run the handler side by side, and run it once', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const probe = concurrencyProbe();
    let effects = 0;
    const handler = applyMiddleware(
      () =>
        probe.run(async () => {
          await sleep(env.ms(300));
          effects++;
        }),
      withIdempotency({ store: new MemoryIdempotencyStore(), group }),
    );
    const deliveries = collector(handler);
    await manager.consume(type, deliveries.handler, { group, concurrency: 4, retry });
    await Promise.all([1, 2].map((copy) => manager.publish(type, copy, { id: 'same' })));
    await deliveries.waitForCount(2, env.patience);
    await sleep(env.ms(300) + env.quiet);
    expect(effects).toBe(1);
    expect(probe.max).toBe(1);
    expect(deliveries.messages.map((message) => message.attempt)).toEqual([1, 1]);
  });

  test('withIdempotency: ids are remembered per group and type, so another group or type with the same id runs', async () => {
    const manager = await env.create();
    const [typeA, typeB] = [env.type(), env.type()];
    const store = new MemoryIdempotencyStore();
    const effects: string[] = [];
    for (const group of [env.group('one'), env.group('two')]) {
      const handler = applyMiddleware(
        (message) => void effects.push(`${group}/${message.type}`),
        withIdempotency({ store, group }),
      );
      await manager.consume([typeA, typeB], handler, { group, retry });
    }
    await manager.publish(typeA, 1, { id: 'shared-id' });
    await manager.publish(typeB, 2, { id: 'shared-id' });
    await manager.publish(typeA, 3, { id: 'shared-id' });
    const deadline = Date.now() + env.patience;
    while (effects.length < 4 && Date.now() < deadline) await sleep(20);
    await sleep(env.quiet);
    expect(effects).toHaveLength(4);
    expect(new Set(effects).size).toBe(4);
  });
}
