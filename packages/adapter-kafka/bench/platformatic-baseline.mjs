// Raw @platformatic/kafka doing the bench's work (see bench.mjs): a fresh 3-partition topic, an
// idempotent producer (acks -1) with concurrent sends coalesced into one `send`, a fresh consumer
// group whose messages are handled `concurrency` at a time, offsets committed after handling.
import { randomUUID } from 'node:crypto';
import { Admin, Consumer, Producer, stringSerializer } from '@platformatic/kafka';
import {
  cpuPerMessage,
  latencyStats,
  makeBody,
  pipelined,
  withDeadline,
} from '../../../scripts/bench-lib.mjs';

const WINDOW = 256;
const PARTITIONS = 3;
const TIMEOUT_MS = 180_000;
/** Handled offsets are committed this often (the kafkajs baseline commits once per batch). */
const COMMIT_EVERY_MS = 100;

function brokersOf(url) {
  return url
    .replace(/^kafka:\/\//, '')
    .replace(/\/.*$/, '')
    .split(',');
}

function coalescingSender(producer) {
  let queue = [];
  let sending = false;
  const drain = async () => {
    sending = true;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        await producer.send({ messages: batch.map((entry) => entry.message) });
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

export async function runPlatformaticBaseline({ messages, concurrency, url, onProgress }) {
  const bootstrapBrokers = brokersOf(url);
  const topic = `bench.rawp.${randomUUID()}`;
  const admin = new Admin({ clientId: 'bench-rawp', bootstrapBrokers });
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  for (let attempt = 0; ; attempt++) {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
    if (metadata?.topics.get(topic)?.partitions.every((p) => p.leader >= 0)) break;
    if (attempt >= 50) throw new Error(`no leaders for ${topic}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const producer = new Producer({
    clientId: 'bench-rawp',
    bootstrapBrokers,
    idempotent: true,
    serializers: { headerKey: stringSerializer, headerValue: stringSerializer },
  });
  const consumer = new Consumer({
    clientId: 'bench-rawp-consumer',
    bootstrapBrokers,
    groupId: `bench-rawp-${randomUUID()}`,
    maxWaitTime: 100,
    autocommit: false,
  });
  const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' });

  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  // Handled offsets per partition, committed on a timer (a trivial handler finishes in order).
  const toCommit = new Map();
  const commit = async () => {
    if (toCommit.size === 0) return;
    const offsets = [...toCommit.values()];
    toCommit.clear();
    await consumer.commit({ offsets }).catch(() => {});
  };
  const committer = setInterval(commit, COMMIT_EVERY_MS);
  let running = 0;
  const waiting = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  const handle = async (message) => {
    const body = JSON.parse(message.value.toString('utf8'));
    latencies[handled++] = performance.now() - body.sentAt;
    toCommit.set(message.partition, {
      topic,
      partition: message.partition,
      offset: message.offset + 1n,
      leaderEpoch: -1,
    });
    if ((handled & 0x3ff) === 0) onProgress?.(handled);
    if (handled === messages) finish();
  };
  const consuming = (async () => {
    for await (const message of stream) {
      if (running >= concurrency) await new Promise((resolve) => waiting.push(resolve));
      else running++;
      handle(message).finally(release);
      if (handled >= messages) break;
    }
  })();

  const send = coalescingSender(producer);
  const body = makeBody();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const limit = withDeadline(TIMEOUT_MS, 'raw @platformatic/kafka');
  await Promise.race([
    pipelined(WINDOW, messages, () => {
      body.sentAt = performance.now();
      return send({
        topic,
        value: Buffer.from(JSON.stringify(body)),
        headers: { 'content-type': 'application/json', id: randomUUID() },
      });
    }).then(() => done),
    limit.promise,
  ]);
  limit.cancel();
  const seconds = (performance.now() - started) / 1000;
  const cpuUsPerMsg = cpuPerMessage(cpu, handled);
  clearInterval(committer);
  await commit();
  await stream.close().catch(() => {});
  await consuming.catch(() => {});
  await consumer.close(true).catch(() => {});
  await producer.close().catch(() => {});
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.close();
  return { msgsPerSec: handled / seconds, cpuUsPerMsg, ...latencyStats(latencies, handled) };
}
