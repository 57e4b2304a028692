import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, faultLogger } from '@plugmq/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { restartableKafka, TEST_OPTIONS } from './broker.js';

registerDriver(driver);

// The 10 000-message stream across two restarts is the fault suite's scenario 1 (test/faults,
// `pnpm test:faults`); here a shorter stream carries what is Kafka-specific: request/reply across
// the restarts (the reply channel opened before, used after) and per-key publishing.
const MESSAGES = Number(process.env.FAULT_MESSAGES ?? 2_000);
const IN_FLIGHT = 200;
const KEYS = 50;

/** The broker-restart scenario, on one client library (`client` option). */
export function restartTests(client: 'kafkajs' | 'platformatic'): void {
  describe(`kafka broker restarts (${client})`, () => {
    let broker: BrokerHandle;
    const managers: QueueManager[] = [];

    beforeAll(async () => {
      broker = await restartableKafka();
    }, 180_000);

    afterAll(async () => {
      await Promise.allSettled(managers.map((manager) => manager.close()));
      await broker?.stop();
    }, 120_000);

    async function manager(): Promise<QueueManager> {
      const created = await createQueueManager({
        driver: 'kafka',
        url: broker.url,
        ...TEST_OPTIONS,
        client,
        publishTimeoutMs: 60_000,
        logger: faultLogger(),
      });
      managers.push(created);
      return created;
    }

    async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    test('request/reply and a keyed stream across two broker restarts: replies resume, nothing resolved is lost', async () => {
      const type = `fault.restart.${Date.now()}`;
      const producer = await manager();
      const consumer = await manager();
      const received = new Map<string, number>();
      await consumer.consume(
        type,
        (message) => {
          received.set(message.id, (received.get(message.id) ?? 0) + 1);
        },
        { group: 'fault-restart', concurrency: 8, startFrom: 'earliest' },
      );

      // Request/reply across the restarts: the reply channel is opened before, used after.
      const service = `fault.restart.quote.${Date.now()}`;
      await consumer.respond<number, number>(service, (message) => message.body * 2);
      expect(await producer.request<number, number>(service, 1, { timeoutMs: 30_000 })).toBe(2);

      const resolved = new Set<string>();
      let rejected = 0;
      let next = 0;
      const restarts: Promise<void>[] = [];
      const restartAt = [Math.floor(MESSAGES * 0.25), Math.floor(MESSAGES * 0.6)];
      const restartsDone: number[] = [];

      // A bounded window of publishes in flight, like a busy service; the broker goes away twice.
      async function lane(): Promise<void> {
        while (next < MESSAGES) {
          const i = next++;
          if (restartAt.includes(i)) {
            restarts.push(
              (async () => {
                const started = Date.now();
                await broker.restart();
                restartsDone.push(Date.now() - started);
              })(),
            );
          }
          try {
            resolved.add(await producer.publish(type, { i }, { key: `k${i % KEYS}` }));
          } catch {
            rejected++;
          }
        }
      }
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      await Promise.all(restarts);
      console.log(
        `published: ${resolved.size} resolved, ${rejected} rejected; received so far ${received.size}`,
      );
      await waitUntil(
        () => [...resolved].every((id) => received.has(id)),
        120_000,
        'every resolved publish to be received',
      ).catch((error) => {
        console.log(`missing ${[...resolved].filter((id) => !received.has(id)).length} of ${resolved.size}`);
        throw error;
      });
      expect(await producer.request<number, number>(service, 21, { timeoutMs: 60_000 })).toBe(42);
      const lost = [...resolved].filter((id) => !received.has(id)).length;
      const duplicates = [...received.values()].reduce((sum, count) => sum + count - 1, 0);
      console.log(
        `kafka restart fault test: published ${MESSAGES}, resolved ${resolved.size}, rejected ${rejected}, ` +
          `received ${received.size} distinct, lost ${lost}, duplicate deliveries ${duplicates}, ` +
          `restarts took ${restartsDone.join(' ms, ')} ms`,
      );
      expect(restartsDone).toHaveLength(2);
      expect(lost).toBe(0);
      expect(resolved.size + rejected).toBe(MESSAGES);
    }, 600_000);
  });
}
