import { createQueueManager, type QueueManager, registerDriver, type Subscription } from '@plugmq/core';
import type { BrokerHandle } from '@plugmq/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { kafkaBroker, TEST_OPTIONS } from './broker.js';

const MESSAGES = 3_000;
const KEYS = 30;

registerDriver(driver);

/** The rebalance scenarios, on one client library (`client` option). */
export function rebalanceTests(client: 'kafkajs' | 'platformatic'): void {
  describe(`kafka rebalances (${client})`, () => {
    let broker: BrokerHandle;
    const managers: QueueManager[] = [];

    beforeAll(async () => {
      broker = await kafkaBroker();
    }, 180_000);

    afterAll(async () => {
      await Promise.allSettled(managers.map((manager) => manager.close()));
      await broker?.stop();
    }, 120_000);

    async function manager(): Promise<QueueManager> {
      const created = await createQueueManager({ driver: 'kafka', url: broker.url, ...TEST_OPTIONS, client });
      managers.push(created);
      return created;
    }

    test('replies keep arriving while other managers start and stop requesting (no shared reply group to rebalance)', async () => {
      const service = `rebalance.quote.${Date.now()}`;
      const responder = await manager();
      await responder.respond<number, number>(service, (message) => message.body + 1);
      const requester = await manager();
      let answered = 0;
      const steady = (async () => {
        for (let i = 0; i < 40; i++) {
          expect(await requester.request<number, number>(service, i, { timeoutMs: 15_000 })).toBe(i + 1);
          answered++;
        }
      })();
      // Meanwhile three other managers come, ask once, and go.
      for (let round = 0; round < 3; round++) {
        const other = await manager();
        expect(await other.request<number, number>(service, 100, { timeoutMs: 15_000 })).toBe(101);
        await other.close();
      }
      await steady;
      expect(answered).toBe(40);
    }, 120_000);

    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    test('a consumer joins and another leaves the group mid-stream: nothing lost, per-key order kept', async () => {
      const type = `rebalance.${Date.now()}`;
      const group = 'rebalance';
      interface Body {
        key: string;
        seq: number;
      }
      // Deliveries in the order handlers started, across every consumer of the group.
      const deliveries: { body: Body; consumer: string; id: string }[] = [];
      const handler = (consumer: string) => async (message: { id: string; body: unknown }) => {
        deliveries.push({ body: message.body as Body, consumer, id: message.id });
        await sleep(1); // some work, so partitions still have messages in flight when they move
      };
      const options = { group, concurrency: 4, startFrom: 'earliest' as const };

      const producer = await manager();
      const first = await manager();
      const second = await manager();
      const third = await manager();
      const subscriptions: Record<string, Subscription> = {};
      subscriptions.a = await first.consume(type, handler('a'), options);
      subscriptions.b = await second.consume(type, handler('b'), options);

      const published: string[] = [];
      const seqs = new Map<string, number>();
      const publishing = (async () => {
        for (let i = 0; i < MESSAGES; i += 50) {
          const batch = Array.from({ length: 50 }, (_, j) => {
            const key = `k${(i + j) % KEYS}`;
            const seq = seqs.get(key) ?? 0;
            seqs.set(key, seq + 1);
            return { type, body: { key, seq }, options: { key } };
          });
          published.push(...(await producer.publishBatch(batch)));
          await sleep(20);
        }
      })();

      // Mid-stream: a third consumer joins, then the first one leaves.
      const reach = async (count: number) => {
        const until = Date.now() + 60_000;
        while (deliveries.length < count) {
          if (Date.now() > until)
            throw new Error(`only ${deliveries.length} of ${count} deliveries within 60 s`);
          await sleep(20);
        }
      };
      await reach(MESSAGES * 0.2);
      subscriptions.c = await third.consume(type, handler('c'), options);
      await reach(MESSAGES * 0.5);
      await subscriptions.a.close();
      await publishing;

      const deadline = Date.now() + 120_000;
      const seen = () => new Set(deliveries.map((delivery) => delivery.id));
      while (published.some((id) => !seen().has(id)) && Date.now() < deadline) await sleep(100);

      const ids = seen();
      const lost = published.filter((id) => !ids.has(id)).length;
      const duplicates = deliveries.length - ids.size;
      // Per key, the first delivery of each message comes in publish order. (A redelivery after a
      // rebalance repeats messages already seen; at least once allows that, not reordering.)
      const firstSeen = new Map<string, number[]>();
      const once = new Set<string>();
      for (const { body, id } of deliveries) {
        if (once.has(id)) continue;
        once.add(id);
        const list = firstSeen.get(body.key) ?? [];
        list.push(body.seq);
        firstSeen.set(body.key, list);
      }
      const outOfOrder = [...firstSeen]
        .filter(([, list]) => list.some((seq, i) => seq !== i))
        .map(([key]) => key);
      const byConsumer = { a: 0, b: 0, c: 0 } as Record<string, number>;
      for (const { consumer } of deliveries) byConsumer[consumer] = (byConsumer[consumer] ?? 0) + 1;
      console.log(
        `kafka rebalance test: published ${published.length}, received ${ids.size} distinct, lost ${lost}, ` +
          `duplicate deliveries ${duplicates}, keys out of order ${outOfOrder.length}, by consumer ${JSON.stringify(byConsumer)}`,
      );
      expect(lost).toBe(0);
      expect(outOfOrder).toEqual([]);
      expect(byConsumer.c).toBeGreaterThan(0);
    }, 300_000);
  });
}
