import { Kafka, logLevel } from 'kafkajs';
import { expect, it } from 'vitest';
import { describeWithBroker, kafkaBrokers } from '../src/brokers/index.js';
import { TcpProxy } from '../src/faults/proxy.js';
import { FAULT_TEST_MS, unique, VARIANTS } from './brokers-support.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

function kafka(url: string): Kafka {
  // Few retries: a broker that is down must fail the test quickly, not after kafkajs' minute of back-off.
  return new Kafka({
    clientId: 'plugmq-testkit',
    brokers: kafkaBrokers(url),
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
  });
}

async function createTopic(url: string, topic: string): Promise<void> {
  const admin = kafka(url).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** Produces with acks=-1: the broker acknowledges only what it has written to its log. */
async function produce(url: string, topic: string, values: string[]): Promise<void> {
  const producer = kafka(url).producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
  } finally {
    await producer.disconnect();
  }
}

/** The broker addresses a client bootstrapping at `url` is told to dial. */
async function advertised(url: string): Promise<string[]> {
  const admin = kafka(url).admin();
  await admin.connect();
  try {
    const { brokers } = await admin.describeCluster();
    return brokers.map(({ host, port }) => `${host}:${port}`);
  } finally {
    await admin.disconnect();
  }
}

/** Reads `count` messages from the beginning of the topic with a fresh consumer group. */
async function consume(url: string, topic: string, count: number): Promise<string[]> {
  const consumer = kafka(url).consumer({ groupId: unique('group') });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise<string[]>((resolve, reject) => {
      const values: string[] = [];
      const timer = setTimeout(() => reject(new Error(`got ${values.length}/${count} messages`)), 30_000);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            values.push(message.value?.toString() ?? '');
            if (values.length === count) {
              clearTimeout(timer);
              resolve(values);
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}

for (const variant of VARIANTS) {
  await describeWithBroker(
    'kafka',
    `kafka smoke (${variant.label})`,
    (broker) => {
      it('produces one message and consumes it', async () => {
        const topic = unique('smoke');
        await createTopic(broker().url, topic);
        await produce(broker().url, topic, ['hello']);
        expect(await consume(broker().url, topic, 1)).toEqual(['hello']);
      });
    },
    { source: variant.smoke },
  );

  await describeWithBroker(
    'kafka',
    `kafka restart and kill (${variant.label})`,
    (broker) => {
      it(
        'restart() keeps topics and their log',
        async () => {
          const topic = unique('kept');
          await createTopic(broker().url, topic);
          await produce(broker().url, topic, ['one', 'two']);
          await broker().restart();
          expect(await consume(broker().url, topic, 2)).toEqual(['one', 'two']);
        },
        FAULT_TEST_MS,
      );

      it(
        'kill() then restart() keeps every acknowledged message (acks=-1, flush per message)',
        async () => {
          const topic = unique('acked');
          await createTopic(broker().url, topic);
          await produce(broker().url, topic, ['a', 'b', 'c']);
          await broker().kill();
          await broker().restart();
          expect(await consume(broker().url, topic, 3)).toEqual(['a', 'b', 'c']);
        },
        FAULT_TEST_MS,
      );

      it(
        'proxiedListener: a client bootstrapping through the proxy is sent to the proxy, also after restart()',
        async () => {
          const listener = broker().proxied;
          if (!listener) throw new Error('no proxied listener on the handle');
          const proxy = await TcpProxy.start(listener.targetHost, listener.targetPort, listener.listenPort);
          try {
            const throughProxy = proxy.rewrite(broker().url);
            expect(await advertised(throughProxy)).toEqual([`127.0.0.1:${listener.listenPort}`]);
            expect(await advertised(broker().url), 'PLAINTEXT clients are unaffected').toEqual(
              kafkaBrokers(broker().url),
            );
            await broker().restart();
            expect(await advertised(throughProxy)).toEqual([`127.0.0.1:${listener.listenPort}`]);
            expect(proxy.connections).toBeGreaterThan(0);
          } finally {
            await proxy.close();
          }
        },
        FAULT_TEST_MS,
      );
    },
    { source: variant.faults, proxiedListener: true },
  );
}
