import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  applyMiddleware,
  createQueueManager,
  type HandlerMiddleware,
  type Logger,
  type Message,
  PlugmqError,
  type PlugmqEvent,
  type QueueManager,
  registerDriver,
  withConsumerMiddleware,
  withTimeout,
} from '../src/index.js';

const toClose: QueueManager[] = [];
beforeAll(() => registerDriver(memoryDriver));
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((m) => m.close()));
});

async function memory(logger?: Logger): Promise<QueueManager> {
  const manager = await createQueueManager({ driver: 'memory', ...(logger ? { logger } : {}) });
  toClose.push(manager);
  return manager;
}

function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error('condition not met in time'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe('handler middleware', () => {
  it('composes per consumer, first listed outermost', async () => {
    const order: string[] = [];
    const tag =
      (name: string): HandlerMiddleware =>
      (next) =>
      async (message, context) => {
        order.push(`${name}>`);
        await next(message, context);
        order.push(`<${name}`);
      };
    const handler = applyMiddleware(async () => void order.push('handler'), tag('a'), tag('b'));
    await handler({} as Message, { signal: new AbortController().signal });
    expect(order).toEqual(['a>', 'b>', 'handler', '<b', '<a']);

    const consumer = withConsumerMiddleware(
      { types: ['t'], group: 'g', handle: async () => void order.push('consumer') },
      tag('c'),
    );
    await consumer.handle({} as Message, { signal: new AbortController().signal });
    expect(order.slice(5)).toEqual(['c>', 'consumer', '<c']);
  });

  it('withTimeout fails a slow handler with TIMEOUT and aborts its signal, so the message is retried', async () => {
    const queue = await memory();
    const attempts: number[] = [];
    let abortedReason: unknown;
    await queue.consume(
      'mw.slow',
      applyMiddleware(async (message, { signal }) => {
        attempts.push(message.attempt);
        if (message.attempt === 1) {
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          abortedReason = signal.reason;
        }
      }, withTimeout(30)),
      { group: 'g', retry: { maxAttempts: 2, initialDelayMs: 1 } },
    );
    await queue.publish('mw.slow', {});
    await until(() => attempts.length === 2);
    expect(attempts).toEqual([1, 2]);
    expect(abortedReason).toBeInstanceOf(PlugmqError);
    expect((abortedReason as PlugmqError).code).toBe('TIMEOUT');
  });

  it('rejects a non-positive timeout', () => {
    expect(() => withTimeout(0)).toThrow(/positive integer/);
  });
});

describe('manager middleware (use) and events', () => {
  it('publish hooks add headers to publish and publishBatch, finishers run after the send', async () => {
    const queue = await memory();
    const finished: string[] = [];
    const remove = queue.use({
      publish(message) {
        message.headers.traceparent = `tp-${message.id}`;
        return (error) => void finished.push(`${message.type}:${error ? 'failed' : 'ok'}`);
      },
    });
    const seen: Message[] = [];
    await queue.consume(['mw.a', 'mw.b'], (message) => void seen.push(message), { group: 'g' });
    const id = await queue.publish('mw.a', 1, { headers: { x: '1' } });
    const ids = await queue.publishBatch([
      { type: 'mw.b', body: 2 },
      { type: 'mw.a', body: 3 },
    ]);
    expect(typeof id).toBe('string');
    expect(ids).toHaveLength(2);
    await until(() => seen.length === 3);
    expect(seen[0]?.headers).toEqual({ x: '1', traceparent: `tp-${id}` });
    expect(seen.map((m) => m.headers.traceparent)).toEqual([`tp-${id}`, `tp-${ids[0]}`, `tp-${ids[1]}`]);
    expect(finished).toEqual(['mw.a:ok', 'mw.b:ok', 'mw.a:ok']);
    remove();
    await queue.publish('mw.a', 4);
    await until(() => seen.length === 4);
    expect(seen[3]?.headers).toEqual({});
  });

  it('handle hooks wrap every later consume and see the group', async () => {
    const queue = await memory();
    const scopes: string[] = [];
    queue.use({
      handle: (next, scope) => async (message, context) => {
        scopes.push(`${scope.driver}/${scope.group}/${message.type}`);
        await next(message, context);
      },
    });
    let handled = 0;
    await queue.consume('mw.h', () => void handled++, { group: 'workers' });
    await queue.publish('mw.h', {});
    await until(() => handled === 1);
    expect(scopes).toEqual(['memory/workers/mw.h']);
  });

  it('emits delivered/handled pairs, subscribed/unsubscribed, and lists live subscriptions', async () => {
    const queue = await memory();
    const events: PlugmqEvent[] = [];
    queue.events.on((event) => events.push(event));
    const subscription = await queue.consume('mw.e', () => {}, { group: 'g', concurrency: 2 });
    expect(queue.subscriptionInfo()).toEqual([
      { types: ['mw.e'], group: 'g', concurrency: 2, deadLetter: '', inFlight: 0 },
    ]);
    await queue.publish('mw.e', {});
    await until(() => events.some((e) => e.kind === 'handled'));
    await subscription.close();
    // The memory driver may deliver before publish resolves, so only delivered→handled is ordered.
    const kinds = events.map((e) => e.kind);
    expect(kinds[0]).toBe('subscribed');
    expect(kinds.at(-1)).toBe('unsubscribed');
    expect([...kinds].sort()).toEqual(['delivered', 'handled', 'published', 'subscribed', 'unsubscribed']);
    expect(kinds.indexOf('delivered')).toBeLessThan(kinds.indexOf('handled'));
    expect(queue.subscriptionInfo()).toEqual([]);
  });

  it('log lines carry driver even when the logger has no child()', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = (fields: unknown) => void lines.push(fields as Record<string, unknown>);
    const queue = await memory({ trace: log, debug: log, info: log, warn: log, error: log });
    await queue.consume(
      'mw.log',
      () => {
        throw new Error('boom');
      },
      { group: 'g', retry: { maxAttempts: 1 } },
    );
    await queue.publish('mw.log', {});
    await until(() => lines.some((l) => l.deadLetter === 'mw.log.dlq'));
    const line = lines.find((l) => l.deadLetter === 'mw.log.dlq');
    expect(line).toMatchObject({ driver: 'memory', type: 'mw.log', group: 'g', attempt: 1 });
    expect(typeof line?.id).toBe('string');
  });
});
