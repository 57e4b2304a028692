import kafkajs from 'kafkajs';

const { Kafka, logLevel, Partitioners } = kafkajs;
const N = 20000,
  WINDOW = 256;
const kafka = new Kafka({ clientId: 'raw', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const topic = 'rawonly.' + Date.now();
await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
const producer = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  createPartitioner: Partitioners.DefaultPartitioner,
});
await producer.connect();
let queue = [];
let sending = false;
const drain = async () => {
  sending = true;
  while (queue.length) {
    const b = queue;
    queue = [];
    await producer.send({ topic, acks: -1, messages: b.map((e) => e.m) });
    for (const e of b) e.r();
  }
  sending = false;
};
const send = (m) =>
  new Promise((r) => {
    queue.push({ m, r });
    if (!sending) setImmediate(drain);
  });
const body = { sentAt: 0, payload: 'x'.repeat(220) };
let next = 0;
const t = performance.now();
const cpu = process.cpuUsage();
await Promise.all(
  Array.from({ length: WINDOW }, async () => {
    while (next < N) {
      next++;
      body.sentAt = performance.now();
      await send({
        value: Buffer.from(JSON.stringify(body)),
        headers: { 'content-type': 'application/json', id: 'x' + next },
      });
    }
  }),
);
console.log(
  'raw publish only msgs/s',
  Math.round(N / ((performance.now() - t) / 1000)),
  'cpu us/msg',
  (() => {
    const c = process.cpuUsage(cpu);
    return ((c.user + c.system) / N).toFixed(1);
  })(),
);
const consumer = kafka.consumer({ groupId: 'g' + Date.now(), maxWaitTimeInMs: 100 });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
let got = 0;
let done;
const p = new Promise((r) => (done = r));
const t2 = performance.now();
const cpu2 = process.cpuUsage();
await consumer.run({
  partitionsConsumedConcurrently: 3,
  eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
    for (const m of batch.messages) {
      JSON.parse(m.value.toString());
      if (++got === N) done();
    }
    resolveOffset(batch.lastOffset());
    await heartbeat();
  },
});
await p;
console.log(
  'raw consume only msgs/s',
  Math.round(N / ((performance.now() - t2) / 1000)),
  'cpu us/msg',
  (() => {
    const c = process.cpuUsage(cpu2);
    return ((c.user + c.system) / N).toFixed(1);
  })(),
);
await consumer.disconnect();
await producer.disconnect();
await admin.disconnect();
