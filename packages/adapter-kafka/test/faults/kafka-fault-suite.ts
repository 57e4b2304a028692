import { fileURLToPath } from 'node:url';
import { kafkaBrokers, runFaultSuite } from '@plugmq/testkit';
import { Kafka } from 'kafkajs';
import { driver } from '../../src/index.js';
import { TEST_OPTIONS } from '../broker.js';

/**
 * The fault suite on one of the adapter's two clients (faults.test.ts: kafkajs,
 * faults-platformatic.test.ts: @platformatic/kafka, with `priorityLevels`). The broker is faulted the same way for both;
 * the lost-message inspection and the malformed record use raw kafkajs either way.
 */
export function runKafkaFaultSuite(client: 'kafkajs' | 'platformatic'): void {
  runFaultSuite({
    name: client === 'kafkajs' ? 'kafka' : 'kafka (platformatic)',
    kind: 'kafka',
    driver,
    // The platformatic run also turns priority bands on (issue 19): scenario 1b's prioritised
    // stream then crosses band topics and the mover while the broker restarts.
    config: (url) => ({
      driver: 'kafka',
      url,
      ...TEST_OPTIONS,
      client,
      ...(client === 'platformatic' ? { priorityLevels: 4 } : {}),
    }),
    driverModule: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
    coreEntry: fileURLToPath(new URL('../../../core/src/index.ts', import.meta.url)),
    // kafkajs buffers whole fetch responses per partition while the producer's in-flight batches
    // wait for acks: the 200 000 flood measured +177 to +195 MiB in four runs, too close to the
    // default 200 MiB bound for a stable CI; the suite reports the figure in its table either way.
    floodRssBudgetMiB: 300,
    async inspectLost(url, type, ids) {
      // Reads the whole topic with a raw consumer: a lost id found in the log was stored and skipped
      // by the consumer group; one not found was acknowledged to the producer but is not in the log.
      const kafka = new Kafka({ brokers: kafkaBrokers(url), logLevel: 0 });
      const admin = kafka.admin();
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(type);
      await admin.disconnect();
      const total = ends.reduce((sum, end) => sum + Number(end.high), 0);
      const wanted = new Set(ids);
      const found = new Set<string>();
      let read = 0;
      const reader = kafka.consumer({ groupId: `${type}.inspect`, ...KAFKAJS_GROUP_TIMINGS });
      await reader.connect();
      await reader.subscribe({ topic: type, fromBeginning: true });
      await reader.run({
        eachMessage: async ({ message }) => {
          read++;
          const id = message.headers?.['x-plugmq-id']?.toString();
          if (id && wanted.has(id)) found.add(id);
        },
      });
      const deadline = Date.now() + 60_000;
      while (read < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      await reader.disconnect();
      return `${found.size} of ${ids.length} lost ids are in the topic log (${read}/${total} records read)`;
    },
    async injectMalformed(url, type) {
      const kafka = new Kafka({ brokers: kafkaBrokers(url), logLevel: 0 });
      // A foreign producer: PlugMQ's JSON content type header, a value that is not JSON.
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: type,
        messages: [{ value: '{oops', headers: { 'x-plugmq-content-type': 'application/json' } }],
      });
      await producer.disconnect();
      // The dead letter read with a raw consumer of <type>.dlq from its start.
      const reader = kafka.consumer({ groupId: `${type}.probe`, ...KAFKAJS_GROUP_TIMINGS });
      let error: string | undefined;
      let subscribed = false;
      return {
        async error() {
          if (!subscribed) {
            subscribed = true;
            await reader.connect();
            await reader.subscribe({ topic: `${type}.dlq`, fromBeginning: true });
            await reader.run({
              eachMessage: async ({ message }) => {
                const header = message.headers?.['x-plugmq-error'];
                if (header !== undefined) error = String(header);
              },
            });
          }
          return error;
        },
        close: () => reader.disconnect(),
      };
    },
  });
}

const KAFKAJS_GROUP_TIMINGS = { sessionTimeout: 6_000, heartbeatInterval: 500 };
