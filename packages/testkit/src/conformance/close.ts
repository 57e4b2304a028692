import { type Consumer, ConsumerManager, type Message } from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, deferred, sleep, waitFor, withTimeout } from './helpers.js';

/** Subscription.close, manager close/drain, closeTimeoutMs, the consume signal. */
export function closeScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);

  test('Subscription.close() waits for the running handler, starts no other, and the group keeps the rest', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const gate = deferred();
    const started = deferred();
    env.onCleanup(() => gate.resolve());
    let finished = false;
    const first = collector<number>(async (message) => {
      if (message.body === 0) {
        started.resolve();
        await gate.promise;
        finished = true;
      }
    });
    const subscription = await manager.consume(type, first.handler, { group });
    expect(subscription.group).toBe(group);
    expect(subscription.types).toEqual([type]);
    for (let i = 0; i < 5; i++) await manager.publish(type, i);
    await withTimeout(started.promise, env.patience, 'the first handler to start');
    let closed = false;
    const closing = subscription.close().then(() => {
      closed = true;
    });
    await sleep(env.ms(100));
    expect(closed, 'close() resolved while a handler was still running').toBe(false);
    gate.resolve();
    await withTimeout(closing, env.patience, 'subscription.close()');
    expect(finished, 'the running handler finished before close() resolved').toBe(true);
    // On partitioned brokers another message may have been handled before 0 started; what
    // matters is that nothing more is handled once close() has resolved.
    const handledBeforeClose = first.bodies();
    expect(handledBeforeClose).toContain(0);
    await manager.publish(type, 5);
    await manager.publish(type, 6);
    await sleep(env.quiet);
    expect(first.bodies(), 'no handler of the closed subscription ran after close()').toEqual(
      handledBeforeClose,
    );
    await subscription.close();
    const rest = [1, 2, 3, 4, 5, 6].filter((n) => !handledBeforeClose.includes(n));
    const second = collector<number>();
    await manager.consume(type, second.handler, { group });
    await second.waitForCount(rest.length, env.patience);
    await sleep(env.quiet);
    expect(second.bodies().sort()).toEqual(rest);
    expect(
      second.messages.every((message) => message.attempt === 1),
      'handed-back messages count no attempt',
    ).toBe(true);
  });

  test('closing a subscription mid-stream loses nothing and duplicates nothing: a new consumer of the group gets the rest', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const first = collector<number>(() => sleep(env.ms(10)));
    const subscription = await manager.consume(type, first.handler, { group, concurrency: 2 });
    const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => manager.publish(type, i)));
    await first.waitForCount(5, env.patience);
    await withTimeout(subscription.close(), env.patience, 'subscription.close()');
    const handledBefore = first.messages.length;
    const second = collector<number>();
    await manager.consume(type, second.handler, { group, concurrency: 2 });
    await waitFor(
      () => new Set([...first.ids(), ...second.ids()]).size >= 40,
      env.patience,
      'every message handled by one of the two subscriptions',
    );
    await sleep(env.quiet);
    expect(first.messages.length, 'the closed subscription ran nothing after close()').toBe(handledBefore);
    const all = [...first.ids(), ...second.ids()];
    expect(new Set(all)).toEqual(new Set(ids));
    expect(all.length, 'no message handled twice after a clean close').toBe(40);
  });

  test('manager.close() waits for in-flight handlers to finish', async () => {
    const manager = await env.create();
    const type = env.type();
    const started = deferred();
    let finished = false;
    await manager.consume(
      type,
      async () => {
        started.resolve();
        await sleep(env.ms(200));
        finished = true;
      },
      { group: env.group() },
    );
    await manager.publish(type, 'work');
    await withTimeout(started.promise, env.patience, 'the handler to start');
    await withTimeout(manager.close(), env.patience, 'manager.close()');
    expect(finished, 'the in-flight handler finished before close() resolved').toBe(true);
  });

  test('context.signal aborts when close() outlasts closeTimeoutMs (closeTimeoutMs: 200)', async () => {
    const manager = await env.create({ closeTimeoutMs: 200 });
    const type = env.type();
    const started = deferred();
    const bailOut = deferred();
    env.onCleanup(() => bailOut.resolve());
    let abortedBeforeClose: boolean | undefined;
    let abortedAt = 0;
    await manager.consume(
      type,
      async (_message, { signal }) => {
        abortedBeforeClose = signal.aborted;
        started.resolve();
        await Promise.race([
          new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
          bailOut.promise,
        ]);
        if (signal.aborted) abortedAt = Date.now();
      },
      { group: env.group() },
    );
    await manager.publish(type, 'long job');
    await withTimeout(started.promise, env.patience, 'the handler to start');
    await sleep(env.ms(300));
    expect(abortedBeforeClose).toBe(false);
    expect(abortedAt, 'the signal is not aborted before close()').toBe(0);
    const closeStarted = Date.now();
    await withTimeout(
      manager.close(),
      env.ms(10_000),
      'manager.close() with a handler waiting on its signal',
    );
    expect(abortedAt, 'the handler saw its signal abort').toBeGreaterThan(0);
    expect(abortedAt - closeStarted).toBeGreaterThanOrEqual(180);
  });

  test('aborting the consume signal closes the subscription; later messages stay with the group', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const controller = new AbortController();
    const first = collector<string>();
    const subscription = await manager.consume(type, first.handler, { group, signal: controller.signal });
    await manager.publish(type, 'before');
    await first.waitForCount(1, env.patience);
    controller.abort();
    await sleep(env.ms(200));
    await manager.publish(type, 'after-1');
    await manager.publish(type, 'after-2');
    await sleep(env.quiet);
    expect(first.bodies()).toEqual(['before']);
    await withTimeout(subscription.close(), env.patience, 'close() of an aborted subscription');
    const second = collector<string>();
    await manager.consume(type, second.handler, { group });
    await second.waitForCount(2, env.patience);
    expect(second.bodies().sort()).toEqual(['after-1', 'after-2']);
  });

  test('close() while publishes are in flight lets them finish: every resolved publish is delivered', async () => {
    const publisher = await env.create();
    const consumer = await env.create();
    const type = env.type();
    const got = collector<number>();
    await consumer.consume(type, got.handler, { group: env.group(), concurrency: 8 });
    const publishes = Array.from({ length: 100 }, (_, i) => publisher.publish(type, i));
    const closing = publisher.close();
    const results = await Promise.allSettled(publishes);
    await withTimeout(closing, env.patience, 'publisher.close()');
    const sent = results.filter((result) => result.status === 'fulfilled').length;
    for (const result of results) {
      if (result.status === 'rejected') expect((result.reason as { code?: string }).code).toBe('CLOSED');
    }
    await got.waitForCount(sent, env.patience);
    await sleep(env.quiet);
    expect(got.messages.length).toBe(sent);
  });
  test('ConsumerManager over this driver: registered consumers get their messages, stopAll() drains in-flight work', async () => {
    const manager = await env.create();
    const orders = env.type('orders');
    const audit = env.type('audit');
    const started = deferred();
    const handled: string[] = [];
    let finished = false;
    class OrderConsumer implements Consumer<string> {
      readonly types = [orders];
      readonly group = env.group('orders');
      readonly options = { concurrency: 2 };
      async handle(message: Message<string>): Promise<void> {
        handled.push(`order:${message.body}`);
        if (message.body === 'slow') {
          started.resolve();
          await sleep(env.ms(200));
          finished = true;
        }
      }
    }
    const auditConsumer: Consumer<string> = {
      types: [orders, audit],
      group: env.group('audit'),
      handle: async (message) => {
        handled.push(`audit:${message.type === audit ? 'audit' : 'order'}:${message.body}`);
      },
    };
    const consumers = new ConsumerManager(manager).register(new OrderConsumer()).register(auditConsumer);
    await consumers.startAll();
    await manager.publish(orders, 'fast');
    await manager.publish(audit, 'entry');
    await waitFor(() => handled.length >= 3, env.patience, 'three handled messages');
    await manager.publish(orders, 'slow');
    await withTimeout(started.promise, env.patience, 'the slow handler to start');
    await withTimeout(consumers.stopAll(), env.patience, 'stopAll()');
    expect(finished, 'stopAll() waited for the in-flight handler').toBe(true);
    await manager.publish(orders, 'after-stop');
    await sleep(env.quiet);
    expect(handled.filter((entry) => entry.endsWith('after-stop'))).toEqual([]);
    expect(handled).toEqual(
      expect.arrayContaining(['order:fast', 'audit:order:fast', 'audit:audit:entry', 'order:slow']),
    );
  });
}
