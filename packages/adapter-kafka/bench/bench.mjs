// Kafka driver benchmark: PlugMQ's kafka driver against raw kafkajs doing the same work in the same
// run: a fresh 3-partition topic, 256-byte JSON messages published by an idempotent producer with
// acks -1 and the same number of publishes in flight (concurrent sends coalesced into one
// sendBatch, as a hand-written high-throughput kafkajs producer does: kafkajs has no linger),
// consumed by a fresh consumer group with handlers run `concurrency` at a time and offsets
// committed after handling. Producer and consumer have their own clients on both sides.
// `client: 'platformatic'` (pnpm bench --driver kafka --client platformatic) runs the driver on
// @platformatic/kafka and raw @platformatic/kafka as the baseline (platformatic-baseline.mjs).
// Each side reports the process CPU time it used per message handled (user + system, µs).
import { randomUUID } from 'node:crypto';
import { createQueueManager, registerDriver } from '@plugmq/core';
import kafkajs from 'kafkajs';
import {
  latencyStats,
  makeBody,
  pairedRounds,
  pipelined,
  startMeter,
  withDeadline,
} from '../../../scripts/bench-lib.mjs';
import { driver } from '../dist/index.js';
import { runPlatformaticBaseline } from './platformatic-baseline.mjs';

registerDriver(driver);

const { Kafka, logLevel, Partitioners } = kafkajs;
const DEFAULT_URL = 'kafka://127.0.0.1:9092';
/** Publishes awaiting their acknowledgement at once, on both sides. */
const WINDOW = 256;
const PARTITIONS = 3;
const TIMEOUT_MS = 180_000;

function brokersOf(url) {
  return url
    .replace(/^kafka:\/\//, '')
    .replace(/\/.*$/, '')
    .split(',');
}

/** What a careful kafkajs user writes: sends made while one is in flight go out together. */
function coalescingSender(producer, topic) {
  let queue = [];
  let sending = false;
  const drain = async () => {
    sending = true;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        await producer.send({ topic, acks: -1, messages: batch.map((entry) => entry.message) });
        for (const entry of batch) entry.resolve();
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    sending = false;
  };
  return (message) =>
    new Promise((resolve, reject) => {
      queue.push({ message, resolve, reject });
      if (!sending) setImmediate(drain);
    });
}

/**
 * Right after a topic's creation the broker may answer UNKNOWN_TOPIC_OR_PARTITION for a moment,
 * and kafkajs retries neither createTopics nor a consumer's subscribe then (the driver does, see
 * kafkajs-member.ts): a run once ended there.
 */
async function retried(call) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export function runBaseline(options) {
  return options.client === 'platformatic' ? runPlatformaticBaseline(options) : runKafkajsBaseline(options);
}

async function runKafkajsBaseline({ messages, concurrency, url, onProgress }) {
  const kafka = new Kafka({ clientId: 'bench-raw', brokers: brokersOf(url), logLevel: logLevel.NOTHING });
  const consumerKafka = new Kafka({
    clientId: 'bench-raw-consumer',
    brokers: brokersOf(url),
    logLevel: logLevel.NOTHING,
  });
  const topic = `bench.raw.${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  await retried(() =>
    admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true }),
  );
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const consumer = consumerKafka.consumer({ groupId: `bench-raw-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await retried(() => consumer.subscribe({ topic, fromBeginning: true }));

  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const handle = async (message) => {
    const body = JSON.parse(message.value.toString('utf8'));
    latencies[handled++] = performance.now() - body.sentAt;
    if ((handled & 0x3ff) === 0) onProgress?.(handled);
    if (handled === messages) finish();
  };
  let joined;
  const ready = new Promise((resolve) => {
    joined = resolve;
  });
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  // At most `concurrency` handlers at once across all partitions, as PlugMQ's `concurrency` means.
  let running = 0;
  const waiting = [];
  const acquire = () => {
    if (running >= concurrency) return new Promise((resolve) => waiting.push(resolve));
    running++;
    return undefined;
  };
  const releaseSlot = () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  await consumer.run({
    partitionsConsumedConcurrently: PARTITIONS,
    // Handlers run at most `concurrency` at a time; the batch's offset is committed after.
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      const handling = [];
      for (const message of batch.messages) {
        const wait = acquire();
        if (wait) await wait;
        handling.push(handle(message).finally(releaseSlot));
      }
      await Promise.all(handling);
      resolveOffset(batch.lastOffset());
      await heartbeat();
    },
  });
  await ready;

  const send = coalescingSender(producer, topic);
  const body = makeBody();
  const meter = startMeter();
  const limit = withDeadline(TIMEOUT_MS, 'raw kafkajs');
  await Promise.race([
    pipelined(WINDOW, messages, () => {
      body.sentAt = performance.now();
      return send({
        value: Buffer.from(JSON.stringify(body)),
        headers: { 'content-type': 'application/json', id: randomUUID() },
      });
    }).then(() => done),
    limit.promise,
  ]);
  limit.cancel();
  const measured = meter.stop(handled);
  await consumer.disconnect();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  return { ...measured, ...latencyStats(latencies, handled) };
}

export async function runPlugmq({ messages, concurrency, url, onProgress, client = 'kafkajs' }) {
  const config = { driver: 'kafka', url, partitions: PARTITIONS, client };
  const consumer = await createQueueManager({ ...config, clientId: 'bench-plugmq-consumer' });
  const producer = await createQueueManager({ ...config, clientId: 'bench-plugmq' });
  const type = `bench.plugmq.${randomUUID()}`;
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
    { group: `bench-${randomUUID()}`, concurrency },
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
  await dropTopics(url, type);
  return { ...measured, ...latencyStats(latencies, handled) };
}

/** The bench's topics are throw-away: remove them so runs do not pile up on the broker. */
async function dropTopics(url, type) {
  const admin = new Kafka({
    clientId: 'bench-cleanup',
    brokers: brokersOf(url),
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  const topics = (await admin.listTopics()).filter((topic) => topic === type || topic.startsWith(`${type}.`));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
}

export const run = pairedRounds(runPlugmq, runBaseline, { url: DEFAULT_URL });

/** For the features scenario (scripts/bench-features.mjs): priority is an option on Kafka. */
export const featureConfig = { priority: { priorityLevels: 10 } };

/** For the batch scenario (scripts/bench-batch.mjs): a throw-away topic and its clean-up. */
export function batchTarget(url = DEFAULT_URL, client = 'kafkajs') {
  const type = `bench.batch.${randomUUID()}`;
  return {
    config: { driver: 'kafka', url, partitions: PARTITIONS, client },
    type,
    drop: () => dropTopics(url, type),
  };
}
