import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, sleep, uniqueName, waitFor } from './helpers.js';

/** Delivery rules: what arrives, to whom, how often. */
export function deliveryScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);

  test('a published message arrives with its id, type, body, headers, key, timestamp and attempt 1', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector<{ n: number; text: string }>();
    await manager.consume(type, got.handler, { group: env.group() });
    const before = Date.now();
    const id = await manager.publish(
      type,
      { n: 1, text: 'héllo ✓' },
      { key: 'order-7', headers: { 'x-trace': 'abc', tenant: 't1' } },
    );
    const [message] = await got.waitForCount(1, env.patience);
    expect(message?.id).toBe(id);
    expect(message?.type).toBe(type);
    expect(message?.body).toEqual({ n: 1, text: 'héllo ✓' });
    expect(message?.headers).toMatchObject({ 'x-trace': 'abc', tenant: 't1' });
    expect(message?.key).toBe('order-7');
    expect(message?.attempt).toBe(1);
    expect(message?.timestamp).toBeGreaterThanOrEqual(before - 5_000);
    expect(message?.timestamp).toBeLessThanOrEqual(Date.now() + 5_000);
    await got.expectNoMore(1, env.quiet);
  });

  test('publish resolves with the given options.id, else a generated id unique across 1000 publishes', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector();
    await manager.consume(type, got.handler, { group: env.group(), concurrency: 16 });
    const given = uniqueName('given');
    expect(await manager.publish(type, 'with id', { id: given })).toBe(given);
    const ids = await Promise.all(Array.from({ length: 1000 }, (_, i) => manager.publish(type, i)));
    for (const id of ids) {
      expect(typeof id).toBe('string');
      expect(id.length).toBeGreaterThan(0);
    }
    expect(new Set(ids).size).toBe(1000);
    expect(ids).not.toContain(given);
    const received = await got.waitForCount(1001, env.ms(15_000));
    expect(received.find((message) => message.body === 'with id')?.id).toBe(given);
  });

  test('publishBatch resolves with the ids in order and every message is delivered', async () => {
    const manager = await env.create();
    const typeA = env.type('batch-a');
    const typeB = env.type('batch-b');
    const fixedId = uniqueName('batch');
    const got = collector<number>();
    await manager.consume([typeA, typeB], got.handler, { group: env.group(), concurrency: 4 });
    const items = Array.from({ length: 20 }, (_, i) => ({
      type: i % 2 === 0 ? typeA : typeB,
      body: i,
      ...(i === 3 ? { options: { id: fixedId } } : {}),
    }));
    const ids = await manager.publishBatch(items);
    expect(ids).toHaveLength(20);
    expect(ids[3]).toBe(fixedId);
    expect(new Set(ids).size).toBe(20);
    const received = await got.waitForCount(20, env.patience);
    for (const message of received) {
      expect(ids[message.body]).toBe(message.id);
      expect(message.type).toBe(message.body % 2 === 0 ? typeA : typeB);
    }
    expect(await manager.publishBatch([])).toEqual([]);
  });

  test('consume resolves only once live: a message published right after it resolves is received', async () => {
    const manager = await env.create();
    for (let round = 0; round < 3; round++) {
      const type = env.type();
      const got = collector<number>();
      await manager.consume(type, got.handler, { group: env.group() });
      await manager.publish(type, round);
      const [message] = await got.waitForCount(1, env.patience);
      expect(message?.body).toBe(round);
    }
  });

  test('fan-out: two groups each receive every message exactly once', async () => {
    const manager = await env.create();
    const type = env.type();
    const first = collector<number>();
    const second = collector<number>();
    await manager.consume(type, first.handler, { group: env.group('fan-1') });
    await manager.consume(type, second.handler, { group: env.group('fan-2'), concurrency: 3 });
    for (let i = 0; i < 20; i++) await manager.publish(type, i);
    const expected = Array.from({ length: 20 }, (_, i) => i);
    await first.waitForCount(20, env.patience);
    await second.waitForCount(20, env.patience);
    await sleep(env.quiet);
    expect(first.bodies().sort((a, b) => a - b)).toEqual(expected);
    expect(second.bodies().sort((a, b) => a - b)).toEqual(expected);
  });

  test('competing consumers: two managers in one group split the messages, each handled once', async () => {
    const one = await env.create();
    const two = await env.create();
    const type = env.type();
    const group = env.group('compete');
    const slow = () => sleep(env.ms(10));
    const first = collector<number>(slow);
    const second = collector<number>(slow);
    await one.consume(type, first.handler, { group });
    await two.consume(type, second.handler, { group });
    // Distinct keys so partitioned brokers spread the work over partitions.
    for (let i = 0; i < 40; i++) await one.publish(type, i, { key: `k${i}` });
    await waitFor(
      () => first.messages.length + second.messages.length >= 40,
      env.ms(10_000),
      '40 deliveries',
    );
    await sleep(env.quiet);
    const all = [...first.bodies(), ...second.bodies()].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(first.messages.length, 'the first consumer got a share').toBeGreaterThan(0);
    expect(second.messages.length, 'the second consumer got a share').toBeGreaterThan(0);
  });

  test('competing consumers: two consume calls of one manager in one group never both get a message', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const first = collector<number>();
    const second = collector<number>();
    await manager.consume(type, first.handler, { group });
    await manager.consume(type, second.handler, { group });
    for (let i = 0; i < 30; i++) await manager.publish(type, i);
    await waitFor(() => first.messages.length + second.messages.length >= 30, env.patience, '30 deliveries');
    await sleep(env.quiet);
    const all = [...first.bodies(), ...second.bodies()].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  test('one subscription on several types receives all of them, and message.type says which', async () => {
    const manager = await env.create();
    const orders = env.type('orders');
    const refunds = env.type('refunds');
    const got = collector<string>();
    const subscription = await manager.consume([orders, refunds], got.handler, { group: env.group() });
    expect([...subscription.types].sort()).toEqual([orders, refunds].sort());
    await manager.publish(orders, 'o1');
    await manager.publish(refunds, 'r1');
    await manager.publish(orders, 'o2');
    const received = await got.waitForCount(3, env.patience);
    const byBody = Object.fromEntries(received.map((message) => [message.body, message.type]));
    expect(byBody).toEqual({ o1: orders, r1: refunds, o2: orders });
  });

  test('nothing is dropped: 500 concurrent publishes to a slow consumer all arrive exactly once', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector<number>(() => sleep(1));
    await manager.consume(type, got.handler, { group: env.group(), concurrency: 4 });
    const ids = await Promise.all(Array.from({ length: 500 }, (_, i) => manager.publish(type, i)));
    await got.waitForCount(500, env.ms(20_000));
    await sleep(env.quiet);
    expect(got.duplicates(), 'duplicate deliveries in a fault-free run').toEqual([]);
    expect(new Set(got.ids())).toEqual(new Set(ids));
  });

  test('a known group resumes: messages published while its subscription was closed are delivered on return', async () => {
    const manager = await env.create();
    const type = env.type();
    const group = env.group();
    const before = collector<string>();
    const subscription = await manager.consume(type, before.handler, { group });
    await manager.publish(type, 'while-here');
    await before.waitForCount(1, env.patience);
    await subscription.close();
    await manager.publish(type, 'while-away-1');
    await manager.publish(type, 'while-away-2');
    const after = collector<string>();
    await manager.consume(type, after.handler, { group });
    await after.waitForCount(2, env.patience);
    await sleep(env.quiet);
    expect(after.bodies().sort()).toEqual(['while-away-1', 'while-away-2']);
    expect(before.bodies()).toEqual(['while-here']);
  });

  test('a known group resumes after its manager restarts (another manager published meanwhile)', async () => {
    const type = env.type();
    const group = env.group();
    const publisher = await env.create();
    const first = await env.create();
    const before = collector<string>();
    await first.consume(type, before.handler, { group });
    await publisher.publish(type, 'one');
    await before.waitForCount(1, env.patience);
    await first.close();
    await publisher.publish(type, 'two');
    const restarted = await env.create();
    const after = collector<string>();
    await restarted.consume(type, after.handler, { group });
    await after.waitForCount(1, env.patience);
    await sleep(env.quiet);
    expect(after.bodies()).toEqual(['two']);
  });
}
