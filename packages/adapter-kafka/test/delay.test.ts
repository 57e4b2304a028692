import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, uniqueGroup, uniqueType } from '@plugmq/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DueHeap } from '../src/due-heap.js';
import { driver } from '../src/index.js';
import { kafkaBroker, TEST_OPTIONS } from './broker.js';

registerDriver(driver);

// What only Kafka's delay needs proving: delayed messages wait in `<type>.delay` until a delay
// mover (run by the type's consumers) moves them, so they survive every consumer stopping, and
// one move reaches every group once.

let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await kafkaBroker();
}, 180_000);
afterAll(() => broker?.stop(), 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await sleep(25);
}

test('DueHeap pops by due time, ties in arrival order, and retain drops what it rejects', () => {
  const heap = new DueHeap<{ due: number; seq: number; name: string }>();
  const dues = [50, 10, 30, 10, 70, 20, 30, 5];
  for (const [seq, due] of dues.entries()) heap.push({ due, seq, name: `${due}/${seq}` });
  heap.retain((item) => item.due !== 70);
  const order: string[] = [];
  for (let item = heap.pop(); item; item = heap.pop()) order.push(item.name);
  expect(order).toEqual(['5/7', '10/1', '10/3', '20/5', '30/2', '30/6', '50/0']);
  expect(heap.size).toBe(0);
});

describe.each(['kafkajs', 'platformatic'])('delayMs on kafka (%s)', (client) => {
  const open = (): Promise<QueueManager> =>
    createQueueManager({ driver: 'kafka', url: broker!.url, ...TEST_OPTIONS, client });

  test('a delayed message outlives the consumers: a manager started after it was due gets it once', async () => {
    const type = uniqueType('delay-crash');
    const group = uniqueGroup('delay-crash');
    const first = await open();
    const early: string[] = [];
    await first.consume<string>(type, (message) => void early.push(message.body), { group });
    await first.publish(type, 'later', { delayMs: 2_000, key: 'k' });
    // Closed before it is due: the mover hands it back uncommitted.
    await first.close();
    expect(early).toEqual([]);
    await sleep(2_500);

    const second = await open();
    try {
      const got: string[] = [];
      await second.consume<string>(type, (message) => void got.push(message.body), { group });
      await until(() => got.length > 0, 20_000);
      await sleep(1_500); // a duplicate would arrive meanwhile
      expect(got).toEqual(['later']);
    } finally {
      await second.close();
    }
  }, 60_000);

  test('two groups in two managers (two movers of one mover group) each get every delayed message once', async () => {
    const type = uniqueType('delay-groups');
    const [a, b] = [await open(), await open()];
    try {
      const gotA: number[] = [];
      const gotB: number[] = [];
      await a.consume<number>(type, (message) => void gotA.push(message.body), { group: uniqueGroup('a') });
      await b.consume<number>(type, (message) => void gotB.push(message.body), { group: uniqueGroup('b') });
      const sent = Array.from({ length: 12 }, (_, i) => i);
      const at = Date.now();
      // Shorter delays published later: read ahead, they are moved first.
      await Promise.all(sent.map((i) => a.publish(type, i, { delayMs: 1_200 - i * 50, key: `k${i % 4}` })));
      await until(() => gotA.length >= sent.length && gotB.length >= sent.length, 30_000);
      expect(Date.now() - at).toBeGreaterThanOrEqual(1_200 - 11 * 50 - 20);
      await sleep(1_500);
      expect([...gotA].sort((x, y) => x - y)).toEqual(sent);
      expect([...gotB].sort((x, y) => x - y)).toEqual(sent);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 90_000);

  test('inspect() does not list the delay mover group as a group', async () => {
    const type = uniqueType('delay-inspect');
    const group = uniqueGroup('delay-inspect');
    const manager = await open();
    try {
      const got: string[] = [];
      await manager.consume<string>(type, (message) => void got.push(message.body), { group });
      await manager.publish(type, 'x', { delayMs: 100 });
      await until(() => got.length > 0, 20_000);
      await sleep(300); // the mover's commit
      const seen = await manager.inspect();
      const groups = seen.groups.filter((state) => state.type.startsWith(type));
      expect(groups.map((state) => `${state.type}/${state.group}`)).toEqual([`${type}/${group}`]);
    } finally {
      await manager.close();
    }
  }, 60_000);
});
