import type { Message } from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, recordingLogger, sleep } from './helpers.js';

/** At least once: nack, retry with back-off, dead-letter. */
export function retryScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);
  const fastRetry = (maxAttempts: number) => ({
    maxAttempts,
    initialDelayMs: 20,
    factor: 2,
    maxDelayMs: 100,
  });

  test('a handler that throws is retried with attempt 2, 3 (same id and body) until it succeeds', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector<{ order: number }>((message) => {
      if (message.attempt < 3) throw new Error(`transient failure on attempt ${message.attempt}`);
    });
    await manager.consume(type, got.handler, { group: env.group(), retry: fastRetry(5) });
    const id = await manager.publish(type, { order: 9 }, { key: 'k', headers: { h: 'v' } });
    const received = await got.waitForCount(3, env.patience);
    expect(received.map((message) => message.attempt)).toEqual([1, 2, 3]);
    for (const message of received) {
      expect(message.id).toBe(id);
      expect(message.body).toEqual({ order: 9 });
      expect(message.key).toBe('k');
      expect(message.headers).toMatchObject({ h: 'v' });
    }
    await got.expectNoMore(3, env.quiet);
  });

  test('a rejected promise counts as a failure like a throw', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector((message) =>
      message.attempt === 1 ? Promise.reject(new Error('async failure')) : Promise.resolve(),
    );
    await manager.consume(type, got.handler, { group: env.group(), retry: fastRetry(3) });
    await manager.publish(type, 'x');
    const received = await got.waitForCount(2, env.patience);
    expect(received.map((message) => message.attempt)).toEqual([1, 2]);
    await got.expectNoMore(2, env.quiet);
  });

  test('after maxAttempts the message goes to <type>.dlq with id, key, body, headers and x-plugmq-* headers', async () => {
    const manager = await env.create();
    const type = env.type();
    const attempts = collector(() => {
      throw new Error('handler exploded: code 42');
    });
    const dead = collector<{ order: number }>();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    await manager.consume(type, attempts.handler, { group: env.group(), retry: fastRetry(3) });
    const id = await manager.publish(
      type,
      { order: 5 },
      { key: 'customer-1', headers: { 'x-trace': 't-1' } },
    );
    const [letter] = await dead.waitForCount(1, env.patience);
    expect(attempts.messages.map((message) => message.attempt)).toEqual([1, 2, 3]);
    expect(letter?.id).toBe(id);
    expect(letter?.type).toBe(`${type}.dlq`);
    expect(letter?.key).toBe('customer-1');
    expect(letter?.body).toEqual({ order: 5 });
    expect(letter?.attempt).toBe(1);
    expect(letter?.headers['x-trace']).toBe('t-1');
    expect(letter?.headers['x-plugmq-error']).toContain('handler exploded: code 42');
    expect(letter?.headers['x-plugmq-original-type']).toBe(type);
    expect(letter?.headers['x-plugmq-attempts']).toBe('3');
    await attempts.expectNoMore(3, env.quiet);
    await dead.expectNoMore(1, 0);
  });

  test('deadLetter names a custom dead-letter type; raw bytes keep their bytes there', async () => {
    const manager = await env.create();
    const type = env.type();
    const custom = env.type('custom-dead');
    const dead = collector<Uint8Array>();
    await manager.consume(custom, dead.handler, { group: env.group('dlq') });
    await manager.consume(
      type,
      () => {
        throw new Error('nope');
      },
      { group: env.group(), retry: fastRetry(2), deadLetter: custom },
    );
    const id = await manager.publish(type, new Uint8Array([9, 8, 7, 0, 255]));
    const [letter] = await dead.waitForCount(1, env.patience);
    expect(letter?.id).toBe(id);
    expect(letter?.type).toBe(custom);
    expect(letter?.body).toBeInstanceOf(Uint8Array);
    expect(Array.from(letter?.body ?? [])).toEqual([9, 8, 7, 0, 255]);
    expect(letter?.headers['x-plugmq-original-type']).toBe(type);
    expect(letter?.headers['x-plugmq-attempts']).toBe('2');
  });

  test('maxAttempts: 1 sends a failed message straight to the dead-letter type, no retry', async () => {
    const manager = await env.create();
    const type = env.type();
    const attempts = collector(() => {
      throw new Error('fail once');
    });
    const dead = collector();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    await manager.consume(type, attempts.handler, { group: env.group(), retry: { maxAttempts: 1 } });
    await manager.publish(type, 'only once');
    const [letter] = await dead.waitForCount(1, env.patience);
    expect(letter?.headers['x-plugmq-attempts']).toBe('1');
    expect(attempts.messages).toHaveLength(1);
    await attempts.expectNoMore(1, env.quiet);
  });

  test('retry goes only to the failing group: another group that succeeded sees the message once', async () => {
    const manager = await env.create();
    const type = env.type();
    const failing = collector((message) => {
      if (message.attempt === 1) throw new Error('first attempt fails');
    });
    const healthy = collector();
    await manager.consume(type, failing.handler, { group: env.group('failing'), retry: fastRetry(3) });
    await manager.consume(type, healthy.handler, { group: env.group('healthy') });
    await manager.publish(type, 'shared');
    await failing.waitForCount(2, env.patience);
    await healthy.waitForCount(1, env.patience);
    await sleep(env.quiet);
    expect(failing.messages.map((message) => message.attempt)).toEqual([1, 2]);
    expect(healthy.messages.map((message) => message.attempt)).toEqual([1]);
  });

  test('retry waits the back-off: min(maxDelayMs, initialDelayMs × factor^(n−1)) between attempts', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector(() => {
      throw new Error('always');
    });
    await manager.consume(type, got.handler, {
      group: env.group(),
      retry: { maxAttempts: 4, initialDelayMs: 100, factor: 2, maxDelayMs: 250 },
      deadLetter: false,
    });
    await manager.publish(type, 'backoff');
    await got.waitForCount(4, env.ms(5_000));
    const gaps = got.arrivedAt.slice(1).map((at, i) => at - (got.arrivedAt[i] ?? at));
    // Expected 100, 200, 250 (capped); 20 ms of timer slack allowed below.
    expect(gaps[0]).toBeGreaterThanOrEqual(80);
    expect(gaps[1]).toBeGreaterThanOrEqual(180);
    expect(gaps[2]).toBeGreaterThanOrEqual(230);
    expect(gaps[2], 'maxDelayMs caps the third delay').toBeLessThan(env.ms(250 * 2 + 1_000));
  });

  test('a failing message does not hold up the rest of its group (concurrency 1)', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector<string>((message) => {
      if (message.body === 'poison') throw new Error('poison');
    });
    const dead = collector<string>();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    await manager.consume(type, got.handler, {
      group: env.group(),
      retry: { maxAttempts: 3, initialDelayMs: env.ms(200), factor: 1, maxDelayMs: env.ms(200) },
    });
    await manager.publish(type, 'poison');
    // All at once: one after the other, five acknowledgements from a replicated broker (a Kafka
    // cluster, acks from every in-sync replica) can outlast the back-off by themselves.
    await Promise.all(Array.from({ length: 5 }, (_, i) => manager.publish(type, `ok-${i}`)));
    await dead.waitForCount(1, env.patience);
    const ok = got.bodies().filter((body) => body !== 'poison');
    expect(ok.sort()).toEqual(['ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-4']);
    // The healthy messages were handled while the poison message waited out its back-offs, not
    // after its last attempt (a group held up by it would get them only once it was dead-lettered).
    // Not "before its first retry": on a replicated broker under load the five acknowledgements
    // alone can outlast one back-off.
    const lastAttemptAt =
      got.arrivedAt[got.messages.findIndex((m) => m.body === 'poison' && m.attempt === 3)];
    const lastOkAt = Math.max(...got.arrivedAt.filter((_, i) => got.messages[i]?.body !== 'poison'));
    expect(lastAttemptAt, 'the poison message was tried three times').toBeDefined();
    expect(lastOkAt).toBeLessThan(lastAttemptAt ?? 0);
  });

  test('deadLetter: false drops an exhausted message with an error log (nothing on the .dlq type); the consumer goes on', async () => {
    const logger = recordingLogger();
    const manager = await env.create({ logger });
    const type = env.type();
    const got = collector<string>((message) => {
      if (message.body === 'bad') throw new Error('bad');
    });
    const dead = collector();
    await manager.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
    await manager.consume(type, got.handler, { group: env.group(), retry: fastRetry(2), deadLetter: false });
    const badId = await manager.publish(type, 'bad');
    await manager.publish(type, 'good');
    await got.waitForCount(3, env.patience);
    await sleep(env.quiet);
    const bad = got.messages.filter((message: Message<string>) => message.body === 'bad');
    expect(bad.map((message) => message.attempt)).toEqual([1, 2]);
    expect(got.bodies()).toContain('good');
    expect(dead.messages).toHaveLength(0);
    expect(logger.find('error', badId).length, 'an error log names the dropped message').toBeGreaterThan(0);
  });

  test('duplicates accounting: with one transient failure per message, every id is handled and acked once', async () => {
    const manager = await env.create();
    const type = env.type();
    const acked: string[] = [];
    const got = collector<number>((message) => {
      if (message.body % 5 === 0 && message.attempt === 1) throw new Error('transient');
      acked.push(message.id);
    });
    await manager.consume(type, got.handler, { group: env.group(), concurrency: 4, retry: fastRetry(3) });
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => manager.publish(type, i)));
    await got.waitForCount(60, env.patience);
    await sleep(env.quiet);
    // 50 first deliveries + 10 retries; a redelivery of an already acked message would be a duplicate.
    expect(got.messages).toHaveLength(60);
    expect(new Set(acked)).toEqual(new Set(ids));
    expect(acked).toHaveLength(50);
  });
}
