import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, joinMidStream, waitFor } from '@plugmq/testkit';
import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { driver } from '../src/index.js';
import { logQueueName } from '../src/replay.js';
import { groupQueueName, topologyFor } from '../src/topology.js';
import { rabbitBroker } from './broker.js';

// What only this driver's replay has: the copy of a type's log (a stream queue) into a new
// group's queue, exact enough under concurrent publishing, and resumed after an interruption.

registerDriver(driver);

const exchange = `plugmq-replay-${process.pid}`;
let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await rabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

const managers: QueueManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});

async function manager(overrides: Record<string, unknown> = {}): Promise<QueueManager> {
  const created = await createQueueManager({
    driver: 'rabbitmq',
    url: broker?.url,
    exchange,
    retentionMs: 600_000,
    ...overrides,
  });
  managers.push(created);
  return created;
}

let unique = 0;
const name = (prefix: string) => `${prefix}-${process.pid}-${++unique}`;

describe('rabbitmq replay (retentionMs)', () => {
  it('without retentionMs a new group cannot start from earliest (UNSUPPORTED)', async () => {
    const plain = await manager({ retentionMs: 0 });
    expect(plain.capabilities.newGroupReceivesOldMessages).toBe(false);
    await expect(
      plain.consume(name('t'), () => {}, { group: 'g', startFrom: 'earliest' }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
  });

  it('a group joining from earliest mid-stream gets every message: the logged ones and the later ones', async () => {
    const producer = await manager();
    const consumer = await manager();
    const count = 2_000;
    const seen = await joinMidStream(producer, consumer, { type: name('replay'), count });
    // Only what was routed between the binding and the marker can come twice.
    const twice = [...seen.values()].filter((times) => times > 1).length;
    expect(twice).toBeLessThan(count / 2);
  }, 60_000);

  it('a replay interrupted before it finished is resumed by the next consumer of the group', async () => {
    const producer = await manager();
    const type = name('resume');
    for (const body of ['a', 'b', 'c']) await producer.publish(type, body);
    // What a process that died mid-replay leaves: the group's queue, bound, and the pending
    // replay's marker, with nothing copied yet.
    const topology = topologyFor(exchange);
    const queue = groupQueueName(topology, 'resumed', type);
    const connection = await amqp.connect(broker?.url ?? '');
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-max-priority': 10 } });
    await channel.bindQueue(queue, exchange, type);
    await channel.assertQueue(`${queue}.replay`, { durable: true });
    channel.sendToQueue(`${queue}.replay`, Buffer.from('marker-of-the-dead-process'), { persistent: true });
    await channel.waitForConfirms();
    const got: string[] = [];
    await producer.consume<string>(type, (message) => void got.push(message.body), {
      group: 'resumed',
      startFrom: 'earliest',
    });
    await waitFor(() => got.length >= 3, 10_000, 'the three logged messages');
    expect(got.sort()).toEqual(['a', 'b', 'c']);
    // Done: the pending replay is gone, so a restart of the group does not copy again. A passive
    // declare of a missing queue closes its channel: a throw-away one.
    const probe = await connection.createChannel();
    probe.on('error', () => {});
    await expect(probe.checkQueue(`${queue}.replay`)).rejects.toMatchObject({ code: 404 });
    const check = await connection.createChannel();
    expect((await check.checkQueue(logQueueName(topology, type))).queue).toBe(logQueueName(topology, type));
    await connection.close().catch(() => {});
  }, 60_000);

  it('a delayed message is in the log from its publish (with its due time), not routed there by its wait queue', async () => {
    const producer = await manager();
    const type = name('delayed-log');
    // The log exists once the type is published to; a group makes the delay's route deliverable.
    await producer.consume(type, () => {}, { group: 'bound' });
    await producer.publish(type, 'later', { delayMs: 2_000 });
    const publishedAt = Date.now();
    const connection = await amqp.connect(broker?.url ?? '');
    try {
      const channel = await connection.createChannel();
      await channel.prefetch(10);
      const entries: { body: string; due: unknown; at: number }[] = [];
      await channel.consume(
        logQueueName(topologyFor(exchange), type),
        (message) => {
          if (!message) return;
          entries.push({
            body: message.content.toString(),
            due: message.properties.headers?.['plugmq-due-at'],
            at: Date.now(),
          });
          channel.ack(message);
        },
        { noAck: false, arguments: { 'x-stream-offset': 'first' } },
      );
      await waitFor(() => entries.length >= 1, 5_000, 'the delayed message in the log');
      expect(entries[0]?.at ?? Number.POSITIVE_INFINITY).toBeLessThan(publishedAt + 1_500);
      expect(Number(entries[0]?.due)).toBeGreaterThanOrEqual(publishedAt + 1_900);
      // Once due, the wait queue dead-letters it to the groups only: the log keeps one entry.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(entries.map((entry) => entry.body)).toEqual(['"later"']);
    } finally {
      await connection.close().catch(() => {});
    }
  }, 30_000);

  it('a group joining from earliest gets a delayed message once: replayed if it fell due before, else when due', async () => {
    const producer = await manager();
    const type = name('delayed-replay');
    await producer.publish(type, 'due-before', { delayMs: 200 });
    await new Promise((resolve) => setTimeout(resolve, 800));
    await producer.publish(type, 'due-after', { delayMs: 2_500 });
    const publishedAt = Date.now();
    const got: { body: string; at: number }[] = [];
    await producer.consume<string>(type, (message) => void got.push({ body: message.body, at: Date.now() }), {
      group: 'joined-between',
      startFrom: 'earliest',
    });
    await waitFor(() => got.length >= 2, 10_000, 'both delayed messages');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(got.map((entry) => entry.body).sort()).toEqual(['due-after', 'due-before']);
    const late = got.find((entry) => entry.body === 'due-after');
    // Not copied early by the replay: it came through its wait queue, when due.
    expect(late?.at ?? 0).toBeGreaterThanOrEqual(publishedAt + 2_300);
  }, 30_000);
});
