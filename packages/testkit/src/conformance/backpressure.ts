import type { PlugmqConfig } from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, deferred, expectPlugmqError, sleep, withTimeout } from './helpers.js';

/** Configuration errors, an unreachable broker, and back-pressure on a full buffer. */
export function backpressureScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);
  const loose = (value: unknown) => value as Partial<PlugmqConfig>;

  test('a url that is not a string, or a core timeout that is not a positive integer, is CONFIG_INVALID naming the field', async () => {
    await expectPlugmqError(() => env.create(loose({ url: 42 })), 'CONFIG_INVALID', 'url');
    for (const field of ['publishTimeoutMs', 'closeTimeoutMs', 'requestTimeoutMs']) {
      for (const value of [0, -5, 1.5, '100']) {
        await expectPlugmqError(() => env.create(loose({ [field]: value })), 'CONFIG_INVALID', field);
      }
    }
  });

  test('an unreachable broker fails create() with CONNECTION, and the password never shows [needs options.unreachable]', async (ctx) => {
    const unreachable = env.options.unreachable;
    if (!unreachable) return ctx.skip('no options.unreachable given for this driver');
    const started = Date.now();
    const error = await expectPlugmqError(() => env.create(unreachable), 'CONNECTION');
    expect(Date.now() - started).toBeLessThan(env.testTimeout);
    const url = typeof unreachable.url === 'string' ? unreachable.url : '';
    let password = '';
    try {
      password = decodeURIComponent(new URL(url).password);
    } catch {
      // Not a URL with credentials: nothing to look for.
    }
    if (password) {
      expect(error.message).not.toContain(password);
      expect(String(error.stack)).not.toContain(password);
      expect(String((error as { cause?: unknown }).cause ?? '')).not.toContain(password);
    }
  });

  /** A group whose only consumer is held by a gate, on a driver with a tiny buffer. */
  async function blockedGroup(overrides: Partial<PlugmqConfig>) {
    const manager = await env.create({ ...env.options.smallBuffer, ...overrides });
    const type = env.type('bp');
    const gate = deferred();
    const started = deferred();
    env.onCleanup(() => gate.resolve());
    const got = collector<number | string>(async (message) => {
      if (message.body === 'gate') {
        started.resolve();
        await gate.promise;
      }
    });
    await manager.consume(type, got.handler, { group: env.group(), concurrency: 1 });
    await manager.publish(type, 'gate');
    await withTimeout(started.promise, env.patience, 'the gate message to start');
    return { manager, type, gate, got };
  }

  test('a full buffer makes publish wait instead of dropping; once the consumer moves, every message arrives once [needs options.smallBuffer]', async (ctx) => {
    if (!env.options.smallBuffer) return ctx.skip('no options.smallBuffer given for this driver');
    const { manager, type, gate, got } = await blockedGroup({});
    let resolved = 0;
    const publishes = Array.from({ length: 30 }, (_, i) =>
      manager.publish(type, i).then((id) => {
        resolved++;
        return id;
      }),
    );
    await sleep(env.ms(300));
    expect(resolved, 'publishes resolved while the buffer was full').toBeLessThan(30);
    gate.resolve();
    const ids = await withTimeout(Promise.all(publishes), env.patience, 'the waiting publishes');
    await got.waitForCount(31, env.patience);
    await sleep(env.quiet);
    expect(got.duplicates()).toEqual([]);
    expect(new Set(got.ids())).toEqual(new Set([got.messages[0]?.id, ...ids]));
  });

  test('publish waits at most publishTimeoutMs on a full buffer, then rejects PUBLISH_FAILED [needs options.smallBuffer]', async (ctx) => {
    if (!env.options.smallBuffer) return ctx.skip('no options.smallBuffer given for this driver');
    const { manager, type, gate, got } = await blockedGroup({ publishTimeoutMs: 300 });
    const started = Date.now();
    const results = await withTimeout(
      Promise.allSettled(Array.from({ length: 30 }, (_, i) => manager.publish(type, i))),
      env.patience,
      'publishes on a full buffer',
    );
    const rejected = results.filter((result) => result.status === 'rejected');
    expect(rejected.length, 'some publishes found no room within publishTimeoutMs').toBeGreaterThan(0);
    for (const result of rejected) expect((result.reason as { code?: string }).code).toBe('PUBLISH_FAILED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    const fulfilled = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    gate.resolve();
    await got.waitForCount(1 + fulfilled.length, env.patience);
    await sleep(env.quiet);
    for (const id of fulfilled) expect(got.ids()).toContain(id);
  });

  test('a publish waiting on a full buffer honours its signal [needs options.smallBuffer]', async (ctx) => {
    if (!env.options.smallBuffer) return ctx.skip('no options.smallBuffer given for this driver');
    const { manager, type } = await blockedGroup({});
    const controller = new AbortController();
    const publishes = Array.from({ length: 30 }, (_, i) =>
      manager.publish(type, i, { signal: controller.signal }),
    );
    await sleep(env.ms(100));
    controller.abort(new Error('caller gave up'));
    const results = await withTimeout(Promise.allSettled(publishes), env.patience, 'aborted publishes');
    const rejected = results.filter((result) => result.status === 'rejected');
    expect(rejected.length, 'publishes still waiting when the signal aborted reject').toBeGreaterThan(0);
    for (const result of rejected) expect(result.reason).toBeInstanceOf(Error);
  });
}
