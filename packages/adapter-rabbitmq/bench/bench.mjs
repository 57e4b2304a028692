// RabbitMQ driver benchmark: PlugMQ's rabbitmq driver against raw amqplib doing the same work in the
// same run: a durable queue bound to a topic exchange, persistent 256-byte JSON messages published on
// a confirm channel with the same number of publishes in flight, consumed with manual acks and
// the driver's default prefetch (twice the concurrency above 1). Producer and consumer each have
// their own connection on both sides.
import { randomUUID } from 'node:crypto';
import { createQueueManager, registerDriver } from '@plugmq/core';
import amqp from 'amqplib';
import {
  latencyStats,
  makeBody,
  pairedRounds,
  pipelined,
  startMeter,
  withDeadline,
} from '../../../scripts/bench-lib.mjs';
import { defaultPrefetch, driver, groupQueueArguments } from '../dist/index.js';

registerDriver(driver);

const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** Publishes awaiting their confirm at once, on both sides. */
const WINDOW = 256;
const TIMEOUT_MS = 120_000;

export async function runBaseline({ messages, concurrency, url, onProgress }, plain = false) {
  const exchange = `bench-raw-${randomUUID()}`;
  const queue = `${exchange}.queue`;
  const type = 'bench.rabbitmq';
  const consumerConnection = await amqp.connect(url);
  const producerConnection = await amqp.connect(url);
  const admin = await consumerConnection.createChannel();
  await admin.assertExchange(exchange, 'topic', { durable: true });
  // The same queue the driver declares for a group (x-max-priority 10, which the priority feature
  // needs): the comparison is of client code, not of two kinds of RabbitMQ queue. A plain queue
  // consumes faster on the broker side; `plainBaseline` in the result shows by how much.
  await admin.assertQueue(queue, { durable: true, ...(plain ? {} : { arguments: groupQueueArguments() }) });
  await admin.bindQueue(queue, exchange, type);

  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const consumer = await consumerConnection.createChannel();
  // The driver's default prefetch (twice the concurrency above 1): both sides fetch as far ahead,
  // so the ratio compares client code, as the queue arguments above do.
  await consumer.prefetch(defaultPrefetch(concurrency));
  // The same work a hand-written consumer does: decode, run the handler (at most `concurrency`
  // at once, which prefetch already enforces), ack.
  await consumer.consume(
    queue,
    (message) => {
      if (message === null) return; // cancelled when the queue is deleted at the end
      // The handler runs as it arrives: with prefetch above the concurrency the other side queues
      // the extra deliveries for a free handler, which a synchronous handler never needs.
      const body = JSON.parse(message.content.toString('utf8'));
      latencies[handled++] = performance.now() - body.sentAt;
      if ((handled & 0x3ff) === 0) onProgress?.(handled);
      consumer.ack(message);
      if (handled === messages) finish();
    },
    { noAck: false },
  );

  const producer = await producerConnection.createConfirmChannel();
  const body = makeBody();
  const meter = startMeter();
  const limit = withDeadline(TIMEOUT_MS, 'raw amqplib');
  await Promise.race([
    pipelined(WINDOW, messages, async () => {
      body.sentAt = performance.now();
      const content = Buffer.from(JSON.stringify(body));
      await new Promise((resolve, reject) => {
        // The window bounds what is buffered, so `drain` needs no extra handling here.
        producer.publish(
          exchange,
          type,
          content,
          { persistent: true, contentType: 'application/json', messageId: randomUUID() },
          (error) => (error ? reject(error) : resolve()),
        );
      });
    }).then(() => done),
    limit.promise,
  ]);
  limit.cancel();
  const measured = meter.stop(handled);
  await admin.deleteQueue(queue);
  await admin.deleteExchange(exchange);
  await producerConnection.close();
  await consumerConnection.close();
  return { ...measured, ...latencyStats(latencies, handled) };
}

export async function runPlugmq({ messages, concurrency, url, onProgress }) {
  const exchange = `bench-plugmq-${randomUUID()}`;
  const config = { driver: 'rabbitmq', url, exchange };
  const consumer = await createQueueManager(config);
  const producer = await createQueueManager(config);
  const type = 'bench.rabbitmq';
  const group = 'bench';
  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  await consumer.consume(
    type,
    async (message) => {
      latencies[handled++] = performance.now() - message.body.sentAt;
      if ((handled & 0x3ff) === 0) onProgress?.(handled);
      if (handled === messages) finish();
    },
    { group, concurrency },
  );
  const body = makeBody();
  const meter = startMeter();
  const limit = withDeadline(TIMEOUT_MS, 'PlugMQ');
  await Promise.race([
    pipelined(WINDOW, messages, () => {
      body.sentAt = performance.now();
      return producer.publish(type, body);
    }).then(() => done),
    limit.promise,
  ]);
  limit.cancel();
  const measured = meter.stop(handled);
  await producer.close();
  await consumer.close();
  await dropTopology(url, exchange, group, type);
  return { ...measured, ...latencyStats(latencies, handled) };
}

/** Queues per group of the features scenario's ordered side (`featureConfig.ordered`). */
const BENCH_PARTITIONS = 4;

/**
 * The bench's exchanges and queues are throw-away: remove them so runs do not pile up on the
 * broker (with the features scenario's options: the partition queues and exchanges, the log).
 * Deleting what does not exist is a no-op.
 */
async function dropTopology(url, exchange, group, type) {
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  if (group !== undefined) {
    await channel.deleteQueue(`${exchange}:${group}:${type}`);
    for (let partition = 1; partition < BENCH_PARTITIONS; partition++) {
      await channel.deleteQueue(`${exchange}:${group}:${type}:${partition}`);
    }
  }
  await channel.deleteQueue(`${exchange}.unrouted`);
  await channel.deleteQueue(`${exchange}.log.${type}`);
  for (const name of [
    exchange,
    `${exchange}.delayed`,
    `${exchange}.unrouted`,
    `${exchange}.retry`,
    `${exchange}.delay`,
    `${exchange}.partitions:${type}`,
    `${exchange}.partitions:${type}:of-${BENCH_PARTITIONS}`,
  ]) {
    await channel.deleteExchange(name);
  }
  await connection.close();
}

/** `PLUGMQ_BENCH_PLAIN_BASELINE=1` also measures raw amqplib on a queue without x-max-priority. */
const pairedRun = pairedRounds(runPlugmq, runBaseline, { url: DEFAULT_URL });

export async function run(options) {
  const result = await pairedRun(options);
  if (!process.env.PLUGMQ_BENCH_PLAIN_BASELINE) return result;
  const plainBaseline = await runBaseline({ ...options, url: options.url ?? DEFAULT_URL }, true);
  return { ...result, plainBaseline };
}

/** For the features scenario (scripts/bench-features.mjs): what ordering and replay need. */
export const featureConfig = { ordered: { partitions: BENCH_PARTITIONS }, replay: { retentionMs: 600_000 } };

/** For the batch scenario (scripts/bench-batch.mjs): a throw-away exchange and its clean-up. */
export function batchTarget(url = DEFAULT_URL) {
  const exchange = `bench-batch-${randomUUID()}`;
  const type = 'bench.batch';
  return {
    config: { driver: 'rabbitmq', url, exchange },
    type,
    drop: (group) => dropTopology(url, exchange, group, type),
  };
}
