import {
  createQueueManager,
  type GroupState,
  type Inspection,
  type PlugmqConfig,
  type QueueManager,
  registerDriver,
} from '@plugmq/core';
import { type BrokerHandle, collector, sleep, startBroker, uniqueGroup, uniqueType } from '@plugmq/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { rabbitBroker } from './broker.js';

registerDriver(driver);

const exchange = `plugmq-inspect-${process.pid}`;
let broker: BrokerHandle;
const managers: QueueManager[] = [];

beforeAll(async () => {
  // A local process with the management plugin when this machine can run one; else any broker
  // (the management API's fields are then checked as undefined only).
  try {
    broker = await startBroker('rabbitmq', { source: 'process', management: true });
  } catch {
    broker = await rabbitBroker();
  }
}, 180_000);
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});
afterAll(() => broker?.stop());

async function manager(overrides: Partial<PlugmqConfig> = {}): Promise<QueueManager> {
  const created = await createQueueManager({ driver: 'rabbitmq', url: broker.url, exchange, ...overrides });
  managers.push(created);
  return created;
}

/** Polls inspect() until `check` holds (the management API's statistics lag by up to 500 ms here). */
async function until(
  queue: QueueManager,
  query: Parameters<QueueManager['inspect']>[0],
  check: (inspection: Inspection) => boolean,
  timeoutMs = 10_000,
): Promise<Inspection> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const inspection = await queue.inspect(query);
    if (check(inspection)) return inspection;
    if (Date.now() > deadline) {
      throw new Error(`inspect() did not reach the expected state: ${JSON.stringify(inspection)}`);
    }
    await sleep(100);
  }
}

function groupOf(inspection: Inspection, group: string): GroupState | undefined {
  return inspection.groups.find((state) => state.group === group);
}

describe('rabbitmq inspect()', () => {
  test('a stopped group keeps its backlog, a running one drains: read live from the queues', async () => {
    const queue = await manager();
    const type = uniqueType('inspect-backlog');
    const [running, stopped] = [uniqueGroup('running'), uniqueGroup('stopped')];
    const got = collector<number>();
    await queue.consume(type, got.handler, { group: running });
    const paused = await queue.consume(type, () => {}, { group: stopped });
    await paused.close();
    const n = 20;
    await queue.publishBatch(Array.from({ length: n }, (_, i) => ({ type, body: i })));
    await got.waitForCount(n, 10_000);
    const inspection = await until(
      queue,
      { types: [type] },
      (state) => groupOf(state, running)?.backlog === 0,
    );
    expect(groupOf(inspection, stopped)).toMatchObject({
      type,
      backlog: n,
      consumers: 0,
      retryBacklog: undefined,
    });
    expect(groupOf(inspection, running)).toMatchObject({ type, backlog: 0, consumers: 1 });
    // Only the asked type: the dead-letter group of `type.dlq` is a dead-letter state, not a group.
    expect(inspection.groups.every((state) => state.type === type)).toBe(true);
    expect(inspection.deadLetters).toEqual([]);
  });

  test('a manager that never consumed sees the pairs it names; without the management API no more', async () => {
    const queue = await manager();
    const type = uniqueType('inspect-named');
    const group = uniqueGroup('named');
    const sub = await queue.consume(type, () => {}, { group });
    await sub.close();
    await queue.publish(type, 'waiting');
    const other = await manager();
    const blind = await other.inspect({ types: [type] });
    expect(blind.groups).toEqual([]);
    const named = await other.inspect({
      groups: [
        { type, group },
        { type, group: uniqueGroup('none') },
      ],
    });
    expect(named.groups).toEqual([
      {
        type,
        group,
        backlog: 1,
        inFlight: undefined,
        oldestWaitingMs: undefined,
        consumers: 0,
        retryBacklog: undefined,
      },
    ]);
  });

  test('with managementUrl: every group is listed, with in-flight counts and the oldest waiting age', async (context) => {
    if (broker.managementUrl === undefined) return context.skip();
    const queue = await manager();
    const type = uniqueType('inspect-managed');
    const [busy, idle] = [uniqueGroup('busy'), uniqueGroup('idle')];
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await queue.consume(type, () => held, { group: busy, concurrency: 2 });
    await (await queue.consume(type, () => {}, { group: idle })).close();
    const publishedAt = Date.now();
    await queue.publishBatch([1, 2, 3, 4, 5].map((body) => ({ type, body })));
    const observer = await manager({ managementUrl: broker.managementUrl });
    try {
      const inspection = await until(
        observer,
        { types: [type] },
        (state) =>
          groupOf(state, busy)?.inFlight === 4 && groupOf(state, idle)?.oldestWaitingMs !== undefined,
      );
      // In flight is what the broker handed out unacknowledged: the default prefetch, twice the
      // concurrency (two running, two fetched ahead); the fifth waits in the queue.
      expect(groupOf(inspection, busy)).toMatchObject({ backlog: 1, inFlight: 4, consumers: 1 });
      const waiting = groupOf(inspection, idle);
      expect(waiting).toMatchObject({ backlog: 5, inFlight: 0, consumers: 0 });
      expect(waiting?.oldestWaitingMs).toBeGreaterThanOrEqual(0);
      expect(waiting?.oldestWaitingMs).toBeLessThanOrEqual(Date.now() - publishedAt + 1_000);
    } finally {
      release();
    }
  });

  test('a wrong management password fails inspect() with CONNECTION, without the password', async (context) => {
    if (broker.managementUrl === undefined) return context.skip();
    const url = new URL(broker.managementUrl);
    url.username = 'guest';
    url.password = 'not-the-password';
    const queue = await manager({ managementUrl: url.href });
    const error = await queue.inspect().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'CONNECTION' });
    expect(String((error as Error).message)).toContain('401');
    expect(String((error as Error).message)).not.toContain('not-the-password');
  });

  test('managementUrl must be an http(s) URL', async () => {
    await expect(manager({ managementUrl: 'amqp://127.0.0.1:15672' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});

describe('rabbitmq dead letters at rest', () => {
  test('K dead letters are counted, then browsed and replayed by a manager created after them', async () => {
    const type = uniqueType('inspect-dlq');
    const deadLetterType = `${type}.dlq`;
    const group = uniqueGroup('failing');
    const first = await manager();
    const sub = await first.consume(
      type,
      () => {
        throw new Error('always fails');
      },
      { group, retry: { maxAttempts: 1 } },
    );
    const k = 3;
    await first.publishBatch(Array.from({ length: k }, (_, i) => ({ type, body: `m${i}` })));
    const counted = await until(first, { types: [deadLetterType] }, (state) =>
      state.deadLetters.some((dead) => dead.type === deadLetterType && dead.count === k),
    );
    expect(counted.deadLetters).toEqual([{ type: deadLetterType, count: k, oldestAgeMs: undefined }]);
    await sub.close();
    await first.close();

    const second = await manager();
    const browsed = await second.deadLetters.browse(deadLetterType);
    expect(browsed.map((record) => record.body)).toEqual(['m0', 'm1', 'm2']);
    expect(browsed[0]).toMatchObject({ originalType: type, error: expect.stringContaining('always fails') });
    // Browsing takes nothing away.
    expect((await second.inspect({ types: [deadLetterType] })).deadLetters[0]?.count).toBe(k);
    const got = collector<string>();
    await second.consume(type, got.handler, { group });
    expect(await second.deadLetters.replay(deadLetterType)).toBe(k);
    await got.waitForCount(k, 10_000);
    expect(got.bodies().sort()).toEqual(['m0', 'm1', 'm2']);
    await until(second, { types: [deadLetterType] }, (state) => state.deadLetters[0]?.count === 0);
  });
});
