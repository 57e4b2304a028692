import {
  createQueueManager,
  type PlugmqConfig,
  PlugmqError,
  type QueueManager,
  registerDriver,
} from '@plugmq/core';
import {
  type BrokerHandle,
  expectPlugmqError,
  sleep,
  uniqueGroup,
  uniqueType,
  waitFor,
} from '@plugmq/testkit';
import * as amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it, test } from 'vitest';
import {
  capabilities,
  capabilitiesFor,
  driver,
  partitionOfKey,
  partitionQueueName,
  topologyFor,
} from '../src/index.js';
import { rabbitBroker } from './broker.js';

registerDriver(driver);

function invalid(config: Record<string, unknown>): PlugmqError {
  try {
    driver.validate({ driver: 'rabbitmq', ...config });
  } catch (error) {
    expect(error).toBeInstanceOf(PlugmqError);
    return error as PlugmqError;
  }
  throw new Error(`accepted ${JSON.stringify(config)}`);
}

describe('partitions option', () => {
  it('defaults to 0: capabilities unchanged', () => {
    expect(driver.validate({ driver: 'rabbitmq' }).partitions).toBe(0);
    expect(capabilitiesFor({ queueType: 'classic', partitions: 0 })).toEqual(capabilities);
    expect(capabilities.orderedByKey).toBe(false);
  });

  it('N ≥ 1 makes the manager ordered by key; quorum still has no priority', () => {
    expect(driver.validate({ driver: 'rabbitmq', partitions: 4 }).partitions).toBe(4);
    expect(capabilitiesFor({ queueType: 'classic', partitions: 4 })).toEqual({
      ...capabilities,
      orderedByKey: true,
    });
    expect(capabilitiesFor({ queueType: 'quorum', partitions: 1 })).toEqual({
      ...capabilities,
      orderedByKey: true,
      priority: false,
    });
  });

  it.each([
    [-1],
    [1.5],
    ['4'],
    [257],
    [null],
    [Number.NaN],
  ])('refuses %j with CONFIG_INVALID saying what to use', (value) => {
    const error = invalid({ partitions: value });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/partitions must be an integer from 0 .* to 256/);
  });

  it('the key hash is FNV-1a 32 bit: stable values', () => {
    // FNV-1a("a") = 0xe40c292c, FNV-1a("foobar") = 0xbf9cf968 (the published test vectors).
    expect(partitionOfKey('a', 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect(partitionOfKey('foobar', 1000)).toBe(0xbf9cf968 % 1000);
    expect(partitionOfKey('ключ', 7)).toBe(partitionOfKey('ключ', 7));
  });
});

const exchange = `plugmq-partitions-${process.pid}`;
let broker: BrokerHandle;
const managers: QueueManager[] = [];

beforeAll(async () => {
  broker = await rabbitBroker();
}, 180_000);
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close().catch(() => {})));
});
afterAll(() => broker?.stop());

async function manager(overrides: Partial<PlugmqConfig> = {}): Promise<QueueManager> {
  const created = await createQueueManager({
    driver: 'rabbitmq',
    url: broker.url,
    exchange,
    partitions: 4,
    ...overrides,
  });
  managers.push(created);
  return created;
}

interface Item {
  readonly key: string;
  readonly seq: number;
}

/** Records who handled what, and fails on two messages of one key running at once. */
function recorder(name: string, log: { by: string; item: Item }[], running: Map<string, string>) {
  return async (message: { body: Item }) => {
    const { key } = message.body;
    const other = running.get(key);
    if (other !== undefined) throw new Error(`key ${key} already running on ${other}`);
    running.set(key, name);
    log.push({ by: name, item: message.body });
    await sleep(1 + (message.body.seq % 3));
    running.delete(key);
  };
}

/** Each key's messages in the order they were first handled: must be publish order, none lost. */
function expectOrdered(log: readonly { item: Item }[], keys: readonly string[], perKey: number): void {
  for (const key of keys) {
    const seen = new Set<number>();
    const first = log
      .filter((entry) => entry.item.key === key)
      .map((entry) => entry.item.seq)
      .filter((seq) => !seen.has(seq) && seen.add(seq) !== undefined);
    expect(first, `order of key ${key}`).toEqual([...first].sort((a, b) => a - b));
    expect(first, `messages of key ${key}`).toHaveLength(perKey);
  }
}

/** One message of every key at a time, paced: a stream the consumers share while it flows. */
async function publishAll(queue: QueueManager, type: string, keys: readonly string[], perKey: number) {
  for (let seq = 0; seq < perKey; seq++) {
    await queue.publishBatch(keys.map((key) => ({ type, body: { key, seq }, options: { key } })));
    await sleep(10);
  }
}

const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);

describe('partitions on the broker', () => {
  test('a key always lands in one partition queue, hash(key) mod N', async () => {
    const queue = await manager();
    const type = uniqueType('route');
    const group = uniqueGroup('route');
    const subscription = await queue.consume(type, () => {}, { group });
    await subscription.close();
    for (let i = 0; i < 10; i++) await queue.publish(type, i, { key: 'alpha' });
    const connection = await amqp.connect(broker.url);
    try {
      const channel = await connection.createChannel();
      const topology = topologyFor(exchange);
      const counts: number[] = [];
      for (let partition = 0; partition < 4; partition++) {
        const name = partitionQueueName(topology, group, type, partition);
        counts.push((await channel.checkQueue(name)).messageCount);
      }
      const expected = [0, 0, 0, 0];
      expected[partitionOfKey('alpha', 4)] = 10;
      expect(counts).toEqual(expected);
    } finally {
      await connection.close();
    }
  });

  test('two consumers of a group share the partitions, each key in order; one closes mid-stream and the other takes over, nothing lost', async () => {
    const publisher = await manager();
    const say = (level: string) => (fields: unknown, msg?: string) =>
      console.log('LOG', level, msg, JSON.stringify(fields));
    const logger = {
      trace() {},
      debug: say('debug'),
      info: say('info'),
      warn: say('warn'),
      error: say('error'),
    };
    const one = await manager({ logger } as never);
    const two = await manager({ logger } as never);
    const type = uniqueType('takeover');
    const group = uniqueGroup('takeover');
    const log: { by: string; item: Item }[] = [];
    const running = new Map<string, string>();
    const first = await one.consume<Item>(type, recorder('one', log, running), { group, concurrency: 4 });
    await two.consume<Item>(type, recorder('two', log, running), { group, concurrency: 4 });
    const perKey = 40;
    const publishing = publishAll(publisher, type, keys, perKey);
    // The first consumer is active on every partition until it hands some over (partition-balance.ts).
    await waitFor(
      () => log.length >= 100 && new Set(log.map((entry) => entry.by)).size === 2,
      20_000,
      'both consumers to handle messages',
    );
    await first.close();
    const closedAt = log.length;
    await publishing;
    await waitFor(
      () => new Set(log.map((e) => `${e.item.key}/${e.item.seq}`)).size >= keys.length * perKey,
      30_000,
      'every message',
    );
    await sleep(300);
    expect(
      log.slice(closedAt).every((entry) => entry.by === 'two'),
      'only two handles after one closed',
    ).toBe(true);
    expectOrdered(log, keys, perKey);
    expect(log, 'a graceful close hands over without duplicates').toHaveLength(keys.length * perKey);
  }, 60_000);

  test("a consumer whose connection dies: the other takes its partitions over, each key's first deliveries in order", async () => {
    const publisher = await manager();
    const one = await manager({ reconnectInitialDelayMs: 2_000, reconnectMaxDelayMs: 2_000 });
    const two = await manager();
    const type = uniqueType('dies');
    const group = uniqueGroup('dies');
    const log: { by: string; item: Item }[] = [];
    const running = new Map<string, string>();
    await two.consume<Item>(type, recorder('two', log, running), { group, concurrency: 4 });
    await one.consume<Item>(type, recorder('one', log, running), { group, concurrency: 4 });
    const perKey = 40;
    const publishing = publishAll(publisher, type, keys, perKey);
    await waitFor(() => log.some((entry) => entry.by === 'one') && log.length >= 100, 20_000, 'one at work');
    // The socket of `one` dies under it (as a network cut would): RabbitMQ requeues what it held.
    const internals = one as unknown as {
      transport: { connections: { current?: { connection: { stream: { destroy(error: Error): void } } } } };
    };
    internals.transport.connections.current?.connection.stream.destroy(new Error('network cut (test)'));
    running.clear();
    await publishing;
    await waitFor(
      () => new Set(log.map((e) => `${e.item.key}/${e.item.seq}`)).size >= keys.length * perKey,
      30_000,
      'every message',
    );
    expectOrdered(log, keys, perKey);
  }, 60_000);

  test('managers disagreeing on partitions fail with CONFIG_INVALID naming the option', async () => {
    const type = uniqueType('mismatch');
    const group = uniqueGroup('mismatch');
    const four = await manager();
    await four.consume(type, () => {}, { group });
    const plain = await manager({ partitions: 0 });
    await expectPlugmqError(
      () => plain.consume(type, () => {}, { group }),
      'CONFIG_INVALID',
      'same partitions',
    );
    const eight = await manager({ partitions: 8 });
    await expectPlugmqError(() => eight.publish(type, 1), 'CONFIG_INVALID', 'same partitions');
    await expectPlugmqError(
      () => eight.consume(type, () => {}, { group: uniqueGroup('other') }),
      'CONFIG_INVALID',
      'same partitions',
    );
    // The manager that agrees goes on.
    await four.publish(type, 'fine', { mandatory: true });
  }, 30_000);
});
