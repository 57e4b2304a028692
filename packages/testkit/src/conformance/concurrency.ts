import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, concurrencyProbe, deferred, sleep, withTimeout } from './helpers.js';

/** The concurrency limit, and a stuck handler that must not stall anyone else. */
export function concurrencyScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);

  test('concurrency: 4 runs at most 4 handlers at once, and does run them in parallel', async () => {
    const manager = await env.create();
    const type = env.type();
    const probe = concurrencyProbe();
    const got = collector(() => probe.run(() => sleep(env.ms(80))));
    await manager.consume(type, got.handler, { group: env.group(), concurrency: 4 });
    await Promise.all(Array.from({ length: 16 }, (_, i) => manager.publish(type, i, { key: `k${i}` })));
    await got.waitForCount(16, env.patience);
    await sleep(env.ms(100));
    expect(probe.max, 'handlers at once').toBeLessThanOrEqual(4);
    expect(probe.max, 'handlers at once').toBeGreaterThanOrEqual(2);
    expect(got.duplicates()).toEqual([]);
  });

  test('concurrency 1 (the default) never runs two handlers at once', async () => {
    const manager = await env.create();
    const type = env.type();
    const probe = concurrencyProbe();
    const got = collector(() => probe.run(() => sleep(env.ms(15))));
    await manager.consume(type, got.handler, { group: env.group() });
    await Promise.all(Array.from({ length: 10 }, (_, i) => manager.publish(type, i, { key: `k${i}` })));
    await got.waitForCount(10, env.patience);
    expect(probe.max).toBe(1);
  });

  test('a stuck handler in one group does not stall other groups of the same type', async () => {
    const manager = await env.create();
    const type = env.type();
    const stuck = deferred();
    const started = deferred();
    env.onCleanup(() => stuck.resolve());
    const blocked = collector(async () => {
      started.resolve();
      await stuck.promise;
    });
    const other = collector<number>();
    await manager.consume(type, blocked.handler, { group: env.group('stuck') });
    await manager.consume(type, other.handler, { group: env.group('free') });
    await manager.publish(type, 0);
    await withTimeout(started.promise, env.patience, 'the stuck handler to start');
    for (let i = 1; i < 6; i++) await manager.publish(type, i);
    await other.waitForCount(6, env.patience);
    expect(other.bodies().sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(blocked.messages, 'the stuck group (concurrency 1) took nothing more').toHaveLength(1);
  });

  test('a stuck handler does not stall a different type consumed by another subscription of the manager', async () => {
    const manager = await env.create();
    const stuckType = env.type('stuck');
    const freeType = env.type('free');
    const stuck = deferred();
    const started = deferred();
    env.onCleanup(() => stuck.resolve());
    await manager.consume(
      stuckType,
      async () => {
        started.resolve();
        await stuck.promise;
      },
      { group: env.group() },
    );
    const free = collector<number>();
    await manager.consume(freeType, free.handler, { group: env.group() });
    await manager.publish(stuckType, 'block');
    await withTimeout(started.promise, env.patience, 'the stuck handler to start');
    for (let i = 0; i < 5; i++) await manager.publish(freeType, i);
    await free.waitForCount(5, env.patience);
  });

  test('with concurrency 2, a stuck handler does not stall the other slot', async () => {
    const manager = await env.create();
    const type = env.type();
    const stuck = deferred();
    const started = deferred();
    env.onCleanup(() => stuck.resolve());
    const got = collector<string>(async (message) => {
      if (message.body === 'stuck') {
        started.resolve();
        await stuck.promise;
      }
    });
    await manager.consume(type, got.handler, { group: env.group(), concurrency: 2 });
    await manager.publish(type, 'stuck', { key: 'stuck-key' });
    await withTimeout(started.promise, env.patience, 'the stuck handler to start');
    for (let i = 0; i < 8; i++) await manager.publish(type, `free-${i}`, { key: `free-${i}` });
    await got.waitForCount(9, env.patience);
    expect(got.bodies().filter((body) => body !== 'stuck')).toHaveLength(8);
  });
}
