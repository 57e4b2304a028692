import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, deferred, startBroker, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
const managers: QueueManager[] = [];
beforeAll(async () => {
  broker = await startBroker('redis');
}, 180_000);
afterAll(async () => {
  await Promise.all(managers.map((manager) => manager.close()));
  await broker?.stop();
});

const keyPrefix = `plugmq-inspect-${process.pid}`;

async function manager(): Promise<QueueManager> {
  const created = await createQueueManager({ driver: 'redis', url: broker?.url, keyPrefix });
  managers.push(created);
  return created;
}

test('inFlight, consumers and retryBacklog come from the group and its retry stream', async () => {
  const queue = await manager();
  const type = uniqueType('inspect');
  const group = uniqueGroup();
  const gate = deferred();
  let failed = false;
  await queue.consume<string>(
    type,
    async (message) => {
      if (message.body === 'hold') await gate.promise;
      if (message.body === 'fail' && !failed) {
        failed = true;
        throw new Error('once');
      }
    },
    { group, concurrency: 2, retry: { maxAttempts: 3, initialDelayMs: 60_000, maxDelayMs: 60_000 } },
  );
  await queue.publish(type, 'hold');
  await queue.publish(type, 'fail');
  let state: Awaited<ReturnType<QueueManager['inspect']>>['groups'][number] | undefined;
  await waitFor(
    async () => {
      state = (await queue.inspect({ types: [type] })).groups.find((g) => g.group === group);
      return state?.inFlight === 1 && state.retryBacklog === 1;
    },
    5_000,
    'one held, one waiting for its retry',
  );
  expect(state).toMatchObject({ type, group, backlog: 0, inFlight: 1, consumers: 1, retryBacklog: 1 });
  gate.resolve();
});

test('one inspect() over 50 types × 2 groups costs a few ms', async () => {
  const queue = await manager();
  const types = Array.from({ length: 50 }, () => uniqueType('cost'));
  for (const type of types) {
    await (await queue.consume(type, () => {}, { group: 'a' })).close();
    await (await queue.consume(type, () => {}, { group: 'b' })).close();
    await queue.publish(type, { n: 1 });
  }
  const times: number[] = [];
  let inspection: Awaited<ReturnType<QueueManager['inspect']>> | undefined;
  for (let run = 0; run < 10; run++) {
    const started = performance.now();
    inspection = await queue.inspect();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const single: number[] = [];
  for (let run = 0; run < 10; run++) {
    const started = performance.now();
    await queue.inspect({ types: [types[0] as string] });
    single.push(performance.now() - started);
  }
  single.sort((a, b) => a - b);
  const ours = inspection?.groups.filter((g) => types.includes(g.type)) ?? [];
  expect(ours).toHaveLength(100);
  expect(ours.every((g) => g.backlog === 1)).toBe(true);
  console.log(
    `redis inspect(): 50 types × 2 groups (+ ${types.length} dead-letter types), median ${times[5]?.toFixed(1)} ms, max ${times[9]?.toFixed(1)} ms; one type: median ${single[5]?.toFixed(1)} ms`,
  );
  expect(times[5]).toBeLessThan(500);
});
