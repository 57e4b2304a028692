import { createQueueManager, DEAD_LETTER_HEADERS, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, collector, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import * as amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { rabbitBroker } from './broker.js';

registerDriver(driver);

const exchange = `plugmq-malformed-${process.pid}`;
let broker: BrokerHandle;
let connection: amqp.ChannelModel;
const managers: QueueManager[] = [];

beforeAll(async () => {
  broker = await rabbitBroker();
  connection = await amqp.connect(broker.url);
}, 180_000);
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});
afterAll(async () => {
  await connection?.close();
  await broker?.stop();
});

async function manager(): Promise<QueueManager> {
  const created = await createQueueManager({ driver: 'rabbitmq', url: broker.url, exchange });
  managers.push(created);
  return created;
}

/** Publishes with raw amqplib, as a foreign producer would, and waits for the broker's confirm. */
async function rawPublish(type: string, body: Buffer, options: amqp.Options.Publish): Promise<void> {
  const channel = await connection.createConfirmChannel();
  channel.publish(exchange, type, body, options);
  await channel.waitForConfirms();
  await channel.close();
}

/** A private queue bound to `type` on the PlugMQ exchange, read with raw amqplib. */
async function rawConsumer(type: string): Promise<amqp.ConsumeMessage[]> {
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, exchange, type);
  const received: amqp.ConsumeMessage[] = [];
  await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
  return received;
}

test.each([
  ['JSON content type, body that is not JSON', Buffer.from('{not json'), { contentType: 'application/json' }],
  ['no properties or headers at all', Buffer.from('\u0000\u0001garbage'), {}],
  [
    'an unknown content type and odd header values',
    Buffer.from('x'),
    {
      contentType: 'application/x-unknown',
      headers: { 'x-plugmq-attempt': 'many', table: { nested: 1 }, list: [1, 2] },
    },
  ],
] as const)('a malformed message (%s) goes to the dead-letter type with a decode error; the consumer goes on', async (_name, body, options) => {
  const queue = await manager();
  const type = uniqueType('malformed');
  const handled = collector<string>();
  await queue.consume(type, handled.handler, { group: uniqueGroup('app') });
  // The dead letter keeps the undecodable body, so a PlugMQ consumer of the dead-letter type could
  // not decode it either: read it off the wire, as an operator's tool would.
  const dead = await rawConsumer(`${type}.dlq`);

  await rawPublish(type, body, { ...options, persistent: true });
  await queue.publish(type, 'after');

  const [good] = await handled.waitForCount(1, 5_000);
  expect(good?.body).toBe('after');
  await waitFor(() => dead.length > 0, 5_000, 'the dead letter');
  const headers = dead[0]?.properties.headers ?? {};
  expect(String(headers[DEAD_LETTER_HEADERS.error])).toContain('DECODE_FAILED');
  expect(String(headers[DEAD_LETTER_HEADERS.originalType])).toBe(type);
  expect(dead[0]?.content.equals(body)).toBe(true);
  expect(handled.bodies()).toEqual(['after']);
});
