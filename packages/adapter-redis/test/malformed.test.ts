import { createQueueManager, type Message, registerDriver } from '@plugmq/core';
import { type BrokerHandle, startBroker, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
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

test('malformed entries injected with raw ioredis go to the dead-letter type; the consumer goes on', async () => {
  const keyPrefix = `plugmq-malformed-${process.pid}`;
  const manager = await createQueueManager({ driver: 'redis', url: broker?.url, keyPrefix });
  const type = uniqueType('malformed');
  const handled: Message<unknown>[] = [];
  const dead: Message<unknown>[] = [];
  await manager.consume(type, (message) => void handled.push(message), { group: uniqueGroup() });
  await manager.consume(`${type}.dlq`, (message) => void dead.push(message), { group: uniqueGroup('dlq') });

  const { stream } = typeKeys(keyPrefix, type);
  // A foreign producer's entry: none of PlugMQ's fields.
  await raw.xadd(stream, '*', 'order', '42', 'note', 'from elsewhere');
  // PlugMQ's fields, but a body that is not the JSON its content type claims.
  await raw.xadd(
    stream,
    '*',
    'x-plugmq-id',
    'bad-json',
    'x-plugmq-content-type',
    'application/json',
    'x-plugmq-body',
    '{oops',
  );
  await manager.publish(type, { fine: true });

  await waitFor(
    () => handled.length === 1 && dead.length === 1,
    5_000,
    'one handled, the foreign entry dead-lettered',
  );
  expect(handled[0]?.body).toEqual({ fine: true });
  // The foreign entry reaches the dead-letter type's consumers as raw bytes, its fields as headers.
  const foreign = dead[0];
  expect(foreign?.headers.order).toBe('42');
  expect(foreign?.headers.note).toBe('from elsewhere');
  expect(foreign?.headers['x-plugmq-original-type']).toBe(type);
  expect(foreign?.headers['x-plugmq-error']).toMatch(/DECODE_FAILED/);
  expect(foreign?.body).toBeInstanceOf(Uint8Array);
  // The bad JSON keeps its bytes and content type on the dead-letter stream (so a consumer of the
  // dead-letter type cannot decode it either and core sends it on to <type>.dlq.dlq).
  const dlqEntries = await raw.xrange(typeKeys(keyPrefix, `${type}.dlq`).stream, '-', '+');
  // Its `x-plugmq-id` is `<timestamp>:<id>` there, as in every entry the driver writes.
  const badJson = dlqEntries
    .map(([, fields]) => fields)
    .find((fields) => fields[fields.indexOf('x-plugmq-id') + 1]?.endsWith(':bad-json'));
  expect(badJson).toBeDefined();
  const field = (name: string) => badJson?.[badJson.indexOf(name) + 1];
  expect(field('x-plugmq-body')).toBe('{oops');
  expect(field('x-plugmq-error')).toMatch(/DECODE_FAILED/);
  // Both originals were acknowledged: nothing stays pending in the group.
  const groups = (await raw.xinfo('GROUPS', stream)) as unknown[][];
  expect(groups[0]?.[groups[0].indexOf('pending') + 1]).toBe(0);
  await manager.close();
});
