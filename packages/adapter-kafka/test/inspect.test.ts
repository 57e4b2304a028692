import {
  createQueueManager,
  type GroupState,
  type Inspection,
  type PlugmqConfig,
  type QueueManager,
  registerDriver,
} from '@plugmq/core';
import { type BrokerHandle, collector, sleep, uniqueGroup, uniqueType } from '@plugmq/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { kafkaBroker, TEST_OPTIONS } from './broker.js';

registerDriver(driver);

let broker: BrokerHandle;
const managers: QueueManager[] = [];

beforeAll(async () => {
  broker = await kafkaBroker();
}, 180_000);
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
}, 60_000);
afterAll(() => broker?.stop(), 60_000);

async function manager(overrides: Partial<PlugmqConfig> = {}): Promise<QueueManager> {
  const created = await createQueueManager({
    driver: 'kafka',
    url: broker.url,
    ...TEST_OPTIONS,
    ...overrides,
  });
  managers.push(created);
  return created;
}

/** Polls inspect() until `check` holds: offsets are committed a moment after messages are handled. */
async function until(
  queue: QueueManager,
  query: Parameters<QueueManager['inspect']>[0],
  check: (inspection: Inspection) => boolean,
  timeoutMs = 15_000,
): Promise<Inspection> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const inspection = await queue.inspect(query);
    if (check(inspection)) return inspection;
    if (Date.now() > deadline) {
      throw new Error(`inspect() did not reach the expected state: ${JSON.stringify(inspection)}`);
    }
    await sleep(200);
  }
}

function groupOf(inspection: Inspection, group: string): GroupState | undefined {
  return inspection.groups.find((state) => state.group === group);
}

// Both clients: inspection reads the broker through each client's own admin and fetch.
for (const client of ['kafkajs', 'platformatic'] as const) {
  describe(`kafka inspect() (${client})`, () => {
    test('lag per group and partition: a stopped group keeps N, a running one drains, any process sees both', async () => {
      const queue = await manager({ client });
      const type = uniqueType('inspect-lag');
      const [running, stopped] = [uniqueGroup('running'), uniqueGroup('stopped')];
      const got = collector<number>();
      await queue.consume(type, got.handler, { group: running, concurrency: 4 });
      await (await queue.consume(type, () => {}, { group: stopped })).close();
      const n = 30;
      await queue.publishBatch(
        Array.from({ length: n }, (_, i) => ({ type, body: i, options: { key: `k${i}` } })),
      );
      await got.waitForCount(n, 20_000);
      // A manager that never consumed: Kafka lists every group by itself.
      const observer = await manager({ client });
      const inspection = await until(
        observer,
        { types: [type] },
        (state) => groupOf(state, running)?.backlog === 0 && groupOf(state, stopped) !== undefined,
      );
      const idle = groupOf(inspection, stopped);
      expect(idle).toMatchObject({
        type,
        backlog: n,
        inFlight: undefined,
        oldestWaitingMs: undefined,
        consumers: 0,
        retryBacklog: 0,
      });
      expect(idle?.partitions?.length).toBe(3);
      expect(idle?.partitions?.reduce((total, { lag }) => total + lag, 0)).toBe(n);
      expect(groupOf(inspection, running)).toMatchObject({ type, backlog: 0, consumers: 1, retryBacklog: 0 });
      expect(inspection.groups.every((state) => state.type === type)).toBe(true);
    }, 90_000);

    test('a failed delivery waiting for its retry counts in retryBacklog', async () => {
      const queue = await manager({ client });
      const type = uniqueType('inspect-retry');
      const group = uniqueGroup('retrying');
      await queue.consume(
        type,
        () => {
          throw new Error('fails');
        },
        { group, retry: { maxAttempts: 2, initialDelayMs: 60_000 } },
      );
      await queue.publish(type, 'once');
      const inspection = await until(
        queue,
        { types: [type] },
        (state) => groupOf(state, group)?.retryBacklog === 1 && groupOf(state, group)?.backlog === 0,
      );
      expect(groupOf(inspection, group)).toMatchObject({ backlog: 0, retryBacklog: 1 });
    }, 90_000);
  });

  describe(`kafka dead letters at rest (${client})`, () => {
    test('K dead letters are counted, then browsed and replayed by a manager created after them', async () => {
      const type = uniqueType('inspect-dlq');
      const deadLetterType = `${type}.dlq`;
      const group = uniqueGroup('failing');
      const first = await manager({ client });
      const sub = await first.consume(
        type,
        () => {
          throw new Error('always fails');
        },
        { group, retry: { maxAttempts: 1 } },
      );
      const k = 3;
      await first.publishBatch(
        Array.from({ length: k }, (_, i) => ({ type, body: `m${i}`, options: { key: 'one' } })),
      );
      const counted = await until(first, { types: [deadLetterType] }, (state) =>
        state.deadLetters.some((dead) => dead.type === deadLetterType && dead.count === k),
      );
      expect(counted.deadLetters).toEqual([{ type: deadLetterType, count: k, oldestAgeMs: undefined }]);
      await sub.close();
      await first.close();

      const second = await manager({ client });
      // Listed by the broker (the default `.dlq` name), though this manager never heard of it.
      expect((await second.inspect({ types: [deadLetterType] })).deadLetters).toEqual([
        { type: deadLetterType, count: k, oldestAgeMs: undefined },
      ]);
      const browsed = await second.deadLetters.browse(deadLetterType);
      expect(browsed.map((record) => record.body)).toEqual(['m0', 'm1', 'm2']);
      expect(browsed[0]).toMatchObject({
        originalType: type,
        error: expect.stringContaining('always fails'),
      });
      const got = collector<string>();
      await second.consume(type, got.handler, { group });
      expect(await second.deadLetters.replay(deadLetterType)).toBe(k);
      await got.waitForCount(k, 20_000);
      expect(got.bodies()).toEqual(['m0', 'm1', 'm2']);
      await until(second, { types: [deadLetterType] }, (state) => state.deadLetters[0]?.count === 0);
      expect(await second.deadLetters.browse(deadLetterType)).toEqual([]);
    }, 120_000);
  });
}
