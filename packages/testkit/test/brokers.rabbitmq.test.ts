import { connect } from 'amqplib';
import { expect, it } from 'vitest';
import { describeWithBroker } from '../src/brokers/index.js';
import { FAULT_TEST_MS, unique, VARIANTS } from './brokers-support.js';

type Connection = Awaited<ReturnType<typeof connect>>;

async function withConnection<T>(url: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await connect(url);
  connection.on('error', () => undefined); // a broker going away is what fault tests expect
  try {
    return await fn(connection);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Publishes persistent messages to a durable queue and waits for the broker's confirms. */
async function publishDurably(url: string, queue: string, bodies: string[]): Promise<void> {
  await withConnection(url, async (c) => {
    const channel = await c.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    for (const body of bodies) channel.sendToQueue(queue, Buffer.from(body), { persistent: true });
    await channel.waitForConfirms();
  });
}

async function drain(url: string, queue: string): Promise<string[]> {
  return withConnection(url, async (c) => {
    const channel = await c.createChannel();
    const bodies: string[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) return bodies;
      bodies.push(message.content.toString());
    }
  });
}

for (const variant of VARIANTS) {
  await describeWithBroker(
    'rabbitmq',
    `rabbitmq smoke (${variant.label})`,
    (broker) => {
      it('publishes one message with a confirm and consumes it', async () => {
        const queue = unique('smoke');
        await withConnection(broker().url, async (c) => {
          const channel = await c.createConfirmChannel();
          await channel.assertQueue(queue, { exclusive: true });
          const received = new Promise<string>((resolve) => {
            void channel.consume(queue, (m) => {
              if (m) {
                channel.ack(m);
                resolve(m.content.toString());
              }
            });
          });
          channel.sendToQueue(queue, Buffer.from('hello'));
          await channel.waitForConfirms();
          expect(await received).toBe('hello');
        });
      });
    },
    { source: variant.smoke },
  );

  await describeWithBroker(
    'rabbitmq',
    `rabbitmq restart and kill (${variant.label})`,
    (broker) => {
      it(
        'restart() keeps durable queues and persistent messages',
        async () => {
          const queue = unique('kept');
          await publishDurably(broker().url, queue, ['one', 'two']);
          await broker().restart();
          expect(await drain(broker().url, queue)).toEqual(['one', 'two']);
        },
        FAULT_TEST_MS,
      );

      it(
        'kill() then restart() keeps every confirmed persistent message',
        async () => {
          // RabbitMQ promises confirmed persistent messages, not a queue declared a moment before a
          // crash: its queue record goes to disk through Mnesia's asynchronous log, and a SIGKILL right
          // after the declare lost it in 1 of 6 tries. So the queue is made durable first (a clean
          // restart), then the messages are confirmed, then the broker is killed.
          const queue = unique('acked');
          await publishDurably(broker().url, queue, []);
          await broker().restart();
          await publishDurably(broker().url, queue, ['a', 'b', 'c']);
          await broker().kill();
          await expect(connect(broker().url)).rejects.toThrow();
          await broker().restart();
          expect(await drain(broker().url, queue)).toEqual(['a', 'b', 'c']);
        },
        FAULT_TEST_MS,
      );
    },
    { source: variant.faults },
  );
}
