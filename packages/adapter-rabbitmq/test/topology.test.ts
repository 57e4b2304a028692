import { createQueueManager, type PlugmqConfig, type QueueManager, registerDriver } from '@plugmq/core';
import {
  type BrokerHandle,
  collector,
  expectPlugmqError,
  sleep,
  uniqueGroup,
  uniqueType,
} from '@plugmq/testkit';
import * as amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { driver, groupQueueName, topologyFor, waitQueueName } from '../src/index.js';
import { rabbitBroker } from './broker.js';

registerDriver(driver);

const exchange = `plugmq-topology-${process.pid}`;
let broker: BrokerHandle;
const managers: QueueManager[] = [];

beforeAll(async () => {
  broker = await rabbitBroker();
}, 180_000);
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});
afterAll(() => broker?.stop());

async function manager(overrides: Partial<PlugmqConfig> = {}): Promise<QueueManager> {
  const created = await createQueueManager({ driver: 'rabbitmq', url: broker.url, exchange, ...overrides });
  managers.push(created);
  return created;
}

describe('topology', () => {
  test('a retry goes back to the failing group only, not to every group of the type', async () => {
    const queue = await manager();
    const type = uniqueType('retry-one-group');
    const failing = collector<string>((message) => {
      if (message.attempt === 1) throw new Error('first attempt fails');
    });
    const healthy = collector<string>();
    await queue.consume(type, failing.handler, {
      group: uniqueGroup('failing'),
      retry: { initialDelayMs: 50 },
    });
    await queue.consume(type, healthy.handler, { group: uniqueGroup('healthy') });
    await queue.publish(type, 'once');
    await failing.waitForCount(2, 5_000);
    await healthy.expectNoMore(1, 500);
    expect(failing.messages.map((m) => m.attempt)).toEqual([1, 2]);
    expect(healthy.messages.map((m) => m.attempt)).toEqual([1]);
  });

  test('per-delay wait queues: a 300 ms message published after a 1 000 ms one arrives first', async () => {
    const queue = await manager();
    const type = uniqueType('delay-order');
    const got = collector<string>();
    await queue.consume(type, got.handler, { group: uniqueGroup() });
    const sent = Date.now();
    await queue.publish(type, 'long', { delayMs: 1_000 });
    await queue.publish(type, 'short', { delayMs: 300 });
    await got.waitForCount(2, 5_000);
    expect(got.bodies()).toEqual(['short', 'long']);
    expect((got.arrivedAt[0] ?? 0) - sent).toBeGreaterThanOrEqual(300);
    expect((got.arrivedAt[1] ?? 0) - sent).toBeGreaterThanOrEqual(1_000);
  });

  test('a delayed publish waits in a quorum queue of its delay and window that dead-letters at least once', async () => {
    const queue = await manager();
    const type = uniqueType('delay-quorum');
    await queue.consume(type, () => {}, { group: uniqueGroup() });
    const delayMs = 45_000;
    const names = topologyFor(exchange);
    // The window is read on both sides of the publish: a run that crosses a window's end checks either queue.
    const candidates = new Set([waitQueueName(names, 'delay', delayMs)]);
    await queue.publish(type, 'later', { delayMs });
    candidates.add(waitQueueName(names, 'delay', delayMs));
    const connection = await amqp.connect(broker.url);
    connection.on('error', () => {});
    try {
      const found: { name: string; messages: number }[] = [];
      for (const name of candidates) {
        const channel = await connection.createChannel();
        channel.on('error', () => {});
        try {
          found.push({ name, messages: (await channel.checkQueue(name)).messageCount });
          // Declaring with the same arguments succeeds; different ones close the channel (PRECONDITION_FAILED).
          await channel.assertQueue(name, {
            durable: true,
            arguments: {
              'x-queue-type': 'quorum',
              'x-message-ttl': delayMs,
              'x-dead-letter-exchange': names.delayedExchange,
              'x-dead-letter-strategy': 'at-least-once',
              'x-overflow': 'reject-publish',
              'x-expires': 15 * 60_000 + delayMs + 10 * 60_000,
            },
          });
          await channel.close();
        } catch {
          // Not this window's queue.
        }
      }
      expect(found.map((entry) => entry.messages)).toEqual([1]);
      expect(found[0]?.name).toMatch(new RegExp(`^${exchange}\\.delay\\.45000\\.w\\d+$`));
    } finally {
      await connection.close();
    }
  });

  test('a wait queue deleted under a running publisher is declared again and the message still arrives', async () => {
    const queue = await manager();
    const type = uniqueType('delay-redeclare');
    const got = collector<string>();
    await queue.consume(type, got.handler, { group: uniqueGroup() });
    const delayMs = 200;
    await queue.publish(type, 'first', { delayMs });
    await got.waitForCount(1, 5_000);
    const connection = await amqp.connect(broker.url);
    try {
      const channel = await connection.createChannel();
      const names = topologyFor(exchange);
      await channel.deleteQueue(waitQueueName(names, 'delay', delayMs));
      // This manager declared the queue already: the publish is returned by the headers exchange
      // (no queue bound any more), and the driver declares the queue again and sends it once more.
      await queue.publish(type, 'second', { delayMs });
      await got.waitForCount(2, 5_000);
      expect(got.bodies()).toEqual(['first', 'second']);
      await channel.checkQueue(waitQueueName(names, 'delay', delayMs));
    } finally {
      await connection.close();
    }
  });

  test('one group on two types through two subscriptions: each gets only its own type', async () => {
    const queue = await manager();
    const [a, b] = [uniqueType('iso-a'), uniqueType('iso-b')];
    const group = uniqueGroup('shared');
    const gotA = collector<string>();
    const gotB = collector<string>();
    await queue.consume(a, gotA.handler, { group });
    await queue.consume(b, gotB.handler, { group });
    for (let i = 0; i < 5; i++)
      await queue.publishBatch([
        { type: a, body: 'a' },
        { type: b, body: 'b' },
      ]);
    await gotA.waitForCount(5, 5_000);
    await gotB.waitForCount(5, 5_000);
    await sleep(200);
    expect(new Set(gotA.bodies())).toEqual(new Set(['a']));
    expect(new Set(gotB.bodies())).toEqual(new Set(['b']));
  });

  test('the documented queue and exchange names exist, durable, with x-max-priority on group queues', async () => {
    const queue = await manager();
    const type = uniqueType('names');
    const group = uniqueGroup('names');
    await queue.consume(type, () => {}, { group });
    const connection = await amqp.connect(broker.url);
    try {
      const channel = await connection.createChannel();
      const names = topologyFor(exchange);
      for (const name of [names.exchange, names.delayedExchange, names.retryExchange, names.delayExchange]) {
        await channel.checkExchange(name);
      }
      const queueName = groupQueueName(names, group, type);
      expect(queueName).toBe(`${exchange}:${group}:${type}`);
      // Declaring with the same arguments succeeds; different ones would close the channel.
      await channel.assertQueue(queueName, { durable: true, arguments: { 'x-max-priority': 10 } });
    } finally {
      await connection.close();
    }
  });

  test('a publish to a type with no group is counted as unrouted (RabbitMQ would drop it)', async () => {
    const queue = await manager();
    const type = uniqueType('unrouted');
    await queue.publish(type, 1);
    await queue.publish(type, 2);
    const health = await queue.health();
    expect((health.details?.unrouted as Record<string, number>)[type]).toBe(2);
    await expectPlugmqError(() => queue.publish(type, 3, { mandatory: true }), 'PUBLISH_FAILED', type);
  });
});

describe('acknowledgements', () => {
  test('a slow handler does not hold back the acks (and prefetch slots) of the ones after it', async () => {
    const queue = await manager();
    const type = uniqueType('slow-head');
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got = collector<number>(async (message) => {
      if (message.body === 0) await gate;
    });
    await queue.consume(type, got.handler, { group: uniqueGroup(), concurrency: 4 });
    await queue.publish(type, 0);
    for (let i = 1; i <= 30; i++) await queue.publish(type, i);
    // With prefetch 4 and message 0 stuck, 30 more only get through if their acks go out alone.
    await got.waitForCount(31, 10_000);
    release();
  });
});

describe('connection', () => {
  test('a URL list fails over: the first node is down, the second serves', async () => {
    const port = new URL(broker.url).port || '5672';
    const url = broker.url.replace(`:${port}`, ':1') + `,127.0.0.1:${port}`;
    const queue = await manager({ url });
    expect((await queue.health()).ok).toBe(true);
  });

  test('an unreachable broker is CONNECTION after connectTimeoutMs, with the password masked', async () => {
    const started = Date.now();
    const error = await expectPlugmqError(
      () =>
        createQueueManager({
          driver: 'rabbitmq',
          url: 'amqp://user:s3cret@127.0.0.1:1',
          connectTimeoutMs: 500,
        }),
      'CONNECTION',
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error.message).not.toContain('s3cret');
    expect(error.message).toContain('user:***@127.0.0.1:1');
  });

  test('wrong credentials are CONNECTION without the password', async () => {
    const url = new URL(broker.url);
    url.password = 'wrong-pa55';
    const error = await expectPlugmqError(
      () => createQueueManager({ driver: 'rabbitmq', url: url.href, connectTimeoutMs: 1_000 }),
      'CONNECTION',
    );
    expect(error.message).not.toContain('wrong-pa55');
  });

  test('bad options are CONFIG_INVALID naming the field', async () => {
    await expectPlugmqError(
      () => createQueueManager({ driver: 'rabbitmq', url: 'http://x' }),
      'CONFIG_INVALID',
      'url',
    );
    await expectPlugmqError(
      () => createQueueManager({ driver: 'rabbitmq', exchange: 'a b' }),
      'CONFIG_INVALID',
      'exchange',
    );
    await expectPlugmqError(
      () => createQueueManager({ driver: 'rabbitmq', prefetch: 0 }),
      'CONFIG_INVALID',
      'prefetch',
    );
    await expectPlugmqError(
      () => createQueueManager({ driver: 'rabbitmq', tls: 'yes' }),
      'CONFIG_INVALID',
      'tls',
    );
    await expectPlugmqError(
      () => createQueueManager({ driver: 'rabbitmq', urls: [] }),
      'CONFIG_INVALID',
      'urls',
    );
  });

  test('health details never show the password', async () => {
    const queue = await manager();
    const health = await queue.health();
    const password = new URL(broker.url).password;
    expect(health.ok).toBe(true);
    if (password) expect(JSON.stringify(health)).not.toContain(`:${password}@`);
  });
});
