import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, deferred, startBroker, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver, typeKeys } from '../src/index.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
let raw: Redis;
beforeAll(async () => {
  broker = await startBroker('redis');
  raw = new Redis(broker.url);
}, 180_000);
afterAll(async () => {
  raw?.disconnect();
  await broker?.stop();
});

const keyPrefix = `plugmq-trim-${process.pid}`;

async function ids(stream: string): Promise<string[]> {
  return (await raw.xrange(stream, '-', '+')).map(([id]) => id);
}

function less(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am < bm || (am === bm && as < bs);
}

test('default trimming never removes an entry some group has not acknowledged', async () => {
  const url = broker?.url as string;
  const manager: QueueManager = await createQueueManager({
    driver: 'redis',
    url,
    keyPrefix,
    trimIntervalMs: 50,
  });
  const type = uniqueType('trim');
  const { stream } = typeKeys(keyPrefix, type);
  const gate = deferred();
  const seen = { fast: new Set<number>(), slow: new Set<number>(), away: new Set<number>() };
  // fast acks everything; slow stalls on message 3 (holding it unacknowledged); away leaves early.
  await manager.consume<number>(type, (m) => void seen.fast.add(m.body), { group: uniqueGroup('fast') });
  const slowGroup = uniqueGroup('slow');
  await manager.consume<number>(
    type,
    async (m) => {
      if (m.body === 3) await gate.promise;
      seen.slow.add(m.body);
    },
    { group: slowGroup },
  );
  const awayGroup = uniqueGroup('away');
  const away = await manager.consume<number>(type, (m) => void seen.away.add(m.body), { group: awayGroup });

  for (let n = 0; n < 10; n++) await manager.publish(type, n);
  await waitFor(() => seen.fast.size === 10 && seen.away.size === 10, 5_000, 'fast and away to handle 0..9');
  await away.close();
  for (let n = 10; n < 20; n++) await manager.publish(type, n);
  await waitFor(() => seen.fast.size === 20, 5_000, 'fast to handle 10..19');

  // Several trimming passes run meanwhile (every 50 ms).
  await new Promise((resolve) => setTimeout(resolve, 400));
  const pending = (await raw.xpending(stream, slowGroup, '-', '+', 10)) as [string][];
  const oldestPending = pending[0]?.[0] as string;
  expect(oldestPending, 'the slow group still holds message 3').toBeDefined();
  const kept = await ids(stream);
  expect(kept.length, 'entries below every group have gone (0..2)').toBeLessThan(20);
  expect(kept.length, 'nothing at or above the slow group’s pending entry went').toBeGreaterThanOrEqual(17);
  expect(kept.every((id) => !less(id, oldestPending) || false)).toBe(true);
  expect(kept[0]).toBe(oldestPending);

  // Everyone catches up: the slow group and the group that was away get every message.
  gate.resolve();
  const back = new Set<number>();
  await manager.consume<number>(type, (m) => void back.add(m.body), { group: awayGroup });
  await waitFor(() => seen.slow.size === 20 && back.size === 10, 5_000, 'slow and away to catch up');
  expect([...back].sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  // Now every group has acknowledged everything: trimming empties the stream.
  await waitFor(async () => (await raw.xlen(stream)) <= 1, 5_000, 'the stream to be trimmed');
  await manager.close();
});

test('a stream with no group is never trimmed (its entries wait for an "earliest" group)', async () => {
  const url = broker?.url as string;
  const manager = await createQueueManager({ driver: 'redis', url, keyPrefix, trimIntervalMs: 50 });
  const type = uniqueType('nogroup');
  for (let n = 0; n < 5; n++) await manager.publish(type, n);
  const other = uniqueType('other');
  await manager.consume(other, () => {}, { group: uniqueGroup() });
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(await raw.xlen(typeKeys(keyPrefix, type).stream)).toBe(5);
  const got = new Set<number>();
  await manager.consume<number>(type, (m) => void got.add(m.body), {
    group: uniqueGroup(),
    startFrom: 'earliest',
  });
  await waitFor(() => got.size === 5, 5_000, 'the earliest group to get all 5');
  await manager.close();
});
