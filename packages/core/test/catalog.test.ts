import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { collector, expectPlugmqError } from '@plugmq/testkit';
import * as v from 'valibot';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Consumer,
  type ConsumerManager,
  createContainer,
  createQueueManager,
  defineCatalog,
  type Message,
  type QueueManager,
  registerDriver,
  TYPES,
} from '../src/index.js';

beforeAll(() => registerDriver(memoryDriver));

const open: QueueManager[] = [];
let namespaces = 0;
async function memory(extra: Record<string, unknown> = {}): Promise<QueueManager> {
  const queue = await createQueueManager({ driver: 'memory', namespace: `catalog-${namespaces}`, ...extra });
  open.push(queue);
  return queue;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((queue) => queue.close()));
  namespaces++;
});

const fast = { maxAttempts: 3, initialDelayMs: 5 };

const zodOrder = z.object({
  orderId: z.string(),
  total: z.number().nonnegative(),
  placedAt: z.iso.datetime().transform((text) => new Date(text)),
});

const valibotShipment = v.object({
  orderId: v.string(),
  items: v.array(v.object({ sku: v.pipe(v.string(), v.minLength(3)), quantity: v.number() })),
});

describe('message catalog with zod and valibot', () => {
  const catalog = defineCatalog({ 'order.placed': zodOrder, 'order.shipped': valibotShipment });

  it('publish refuses a body that fails its schema with INVALID_ARGUMENT naming the path (zod and valibot)', async () => {
    const queue = catalog.attach(await memory());
    await expectPlugmqError(
      () => queue.publish('order.placed', { orderId: 'A', total: -1, placedAt: '2026-12-04T10:00:00Z' }),
      'INVALID_ARGUMENT',
      'body.total',
    );
    const error = await expectPlugmqError(
      () => queue.publish('order.shipped', { orderId: 'A', items: [{ sku: 'ab', quantity: 1 }] }),
      'INVALID_ARGUMENT',
      'body.items[0].sku',
    );
    expect(error.message).toMatch(/does not match the schema of order\.shipped/);
    expect(Array.isArray((error as Error).cause)).toBe(true);
  });

  it("the handler gets the schema's output (zod transform to Date); a valid body is published as given", async () => {
    const queue = catalog.attach(await memory());
    const got = collector<unknown>();
    const placedAt: Date[] = [];
    await queue.consume(
      'order.placed',
      async (message) => {
        placedAt.push(message.body.placedAt);
        await got.handler(message, { signal: new AbortController().signal });
      },
      { group: 'billing' },
    );
    await queue.publish('order.placed', { orderId: 'A', total: 5, placedAt: '2026-12-04T10:00:00Z' });
    await got.waitForCount(1, 2_000);
    expect(placedAt[0]).toBeInstanceOf(Date);
    expect(placedAt[0]?.toISOString()).toBe('2026-12-04T10:00:00.000Z');
  });

  it('an invalid delivery from a producer without the catalog is dead-lettered with INVALID_MESSAGE, never handled', async () => {
    const producer = await memory();
    const consumer = catalog.attach(await memory());
    const handled = collector<unknown>();
    const dead = collector<unknown>();
    await consumer.consume('order.shipped', handled.handler, { group: 'shipping', retry: fast });
    await consumer.consume('order.shipped.dlq', dead.handler, { group: 'ops' });
    await producer.publish('order.shipped', { orderId: 'B', items: [{ sku: 1, quantity: 1 }] });
    await producer.publish('order.shipped', { orderId: 'C', items: [{ sku: 'sku-1', quantity: 2 }] });
    const [letter] = await dead.waitForCount(1, 2_000);
    expect(letter?.headers['x-plugmq-error']).toMatch(/^INVALID_MESSAGE: .*body\.items\[0\]\.sku/);
    expect(letter?.headers['x-plugmq-attempts']).toBe('1');
    await handled.waitForCount(1, 2_000);
    expect(handled.bodies()).toEqual([{ orderId: 'C', items: [{ sku: 'sku-1', quantity: 2 }] }]);
    await handled.expectNoMore(1, 100);
  });

  it('async schemas (zod async refine, valibot *Async) are awaited at publish and on delivery', async () => {
    const taken = new Set(['taken']);
    const asyncCatalog = defineCatalog({
      'user.created': z.object({
        name: z.string().refine(async (name) => !taken.has(name), { message: 'name is taken' }),
      }),
      'user.renamed': v.objectAsync({
        name: v.pipeAsync(
          v.string(),
          v.checkAsync(async (name) => !taken.has(name), 'name is taken'),
        ),
      }),
    });
    const producer = await memory();
    const queue = asyncCatalog.attach(await memory());
    for (const type of ['user.created', 'user.renamed'] as const) {
      await expectPlugmqError(
        () => queue.publish(type, { name: 'taken' }),
        'INVALID_ARGUMENT',
        'body.name: name is taken',
      );
      const handled = collector<{ name: string }>();
      const dead = collector<unknown>();
      await queue.consume(type, handled.handler, { group: 'users' });
      await queue.consume(`${type}.dlq`, dead.handler, { group: 'ops' });
      await producer.publish(type, { name: 'taken' });
      await queue.publish(type, { name: 'free' });
      const [letter] = await dead.waitForCount(1, 2_000);
      expect(letter?.headers['x-plugmq-error']).toMatch(/^INVALID_MESSAGE: .*body\.name: name is taken/);
      await handled.waitForCount(1, 2_000);
      expect(handled.bodies()).toEqual([{ name: 'free' }]);
    }
  });

  it('a schema that throws on a delivery is retried like a failing handler, then dead-lettered with its error', async () => {
    let calls = 0;
    const flaky = defineCatalog({
      'stock.checked': z.object({ sku: z.string() }).refine(() => {
        calls++;
        throw new Error('inventory service unreachable');
      }),
    });
    const producer = await memory();
    const queue = flaky.attach(await memory());
    const handled = collector<unknown>();
    const dead = collector<unknown>();
    await queue.consume('stock.checked', handled.handler, { group: 'stock', retry: fast });
    await queue.consume('stock.checked.dlq', dead.handler, { group: 'ops' });
    await producer.publish('stock.checked', { sku: 'x' });
    const [letter] = await dead.waitForCount(1, 2_000);
    expect(letter?.headers['x-plugmq-error']).toContain('inventory service unreachable');
    expect(letter?.headers['x-plugmq-attempts']).toBe('3');
    // zod's validate runs a refine that throws twice (sync, then its async fallback): 2 per attempt.
    expect(calls).toBe(6);
    expect(handled.messages).toHaveLength(0);
    // At publish a throwing schema is the caller's problem, reported as a PlugmqError.
    await expectPlugmqError(
      () => queue.publish('stock.checked', { sku: 'y' }),
      'INVALID_ARGUMENT',
      'the schema of stock.checked threw',
    );
  });

  it('request/respond on a declared type: the request body is checked, the responder gets the output', async () => {
    const queue = catalog.attach(await memory());
    await queue.respond<{ placedAt: Date }, string>('order.placed', (message) =>
      message.body.placedAt instanceof Date ? 'a Date' : 'not a Date',
    );
    await expectPlugmqError(
      () => queue.request('order.placed', { orderId: 'A', total: 'x' }, { timeoutMs: 2_000 }),
      'INVALID_ARGUMENT',
      'body.total',
    );
    const answer = await queue.request(
      'order.placed',
      { orderId: 'A', total: 1, placedAt: '2026-12-04T10:00:00Z' },
      { timeoutMs: 2_000 },
    );
    expect(answer).toBe('a Date');
  });

  it('publishBatch checks every item before sending any', async () => {
    const queue = catalog.attach(await memory());
    const got = collector<unknown>();
    await queue.consume(['order.placed', 'order.shipped'], got.handler, { group: 'all' });
    await expectPlugmqError(
      () =>
        queue.publishBatch([
          { type: 'order.placed', body: { orderId: 'A', total: 1, placedAt: '2026-12-04T10:00:00Z' } },
          {
            type: 'order.shipped',
            body: { orderId: 'A', items: [{ sku: 'abc', quantity: 'one' as never }] },
          },
        ]),
      'INVALID_ARGUMENT',
      'items[1].body.items[0].quantity',
    );
    await got.expectNoMore(0, 100);
  });
});

describe('catalog declarations and DI', () => {
  it('refuses entries that are not Standard Schemas, bad type names, and a second schema for a type', async () => {
    expect(() => defineCatalog({ 'a.b': { parse: () => 1 } as never })).toThrow(/Standard Schema v1/);
    await expectPlugmqError(() => defineCatalog({ 'has space': z.string() }), 'INVALID_ARGUMENT', 'type');
    const queue = await memory();
    const first = defineCatalog({ 'a.b': z.string() });
    first.attach(queue);
    first.attach(queue); // idempotent
    defineCatalog({ 'c.d': z.string() }).attach(queue); // other types: fine
    await expectPlugmqError(
      () => defineCatalog({ 'a.b': z.number() }).attach(queue),
      'INVALID_ARGUMENT',
      'a.b already has a different schema',
    );
    await expectPlugmqError(
      () => defineCatalog({ 'a.b': z.string() }).attach({ driver: 'custom' } as QueueManager),
      'UNSUPPORTED',
      'defineTransportDriver',
    );
  });

  it('config.catalog must come from defineCatalog (CONFIG_INVALID)', async () => {
    await expectPlugmqError(
      () => createQueueManager({ driver: 'memory', catalog: { 'a.b': z.string() } }),
      'CONFIG_INVALID',
      'defineCatalog',
    );
  });

  it('createContainer({ catalog }) binds TYPES.Catalog and its manager checks consumers registered with the ConsumerManager', async () => {
    const catalog = defineCatalog({ 'invoice.requested': z.object({ orderId: z.string().min(1) }) });
    const container = await createContainer({ driver: 'memory', namespace: 'catalog-di', catalog });
    expect(container.get(TYPES.Catalog)).toBe(catalog);
    const queue = container.get<QueueManager>(TYPES.QueueManager);
    open.push(queue);
    const seen: Message<{ orderId: string }>[] = [];
    const invoices: Consumer<{ orderId: string }> = {
      types: ['invoice.requested'],
      group: 'invoicing',
      handle: async (message) => void seen.push(message),
    };
    const consumers = container.get<ConsumerManager>(TYPES.ConsumerManager);
    consumers.register(invoices as Consumer);
    await consumers.startAll();
    await expectPlugmqError(
      () => queue.publish('invoice.requested', { orderId: '' }),
      'INVALID_ARGUMENT',
      'body.orderId',
    );
    const dead = collector<unknown>();
    await queue.consume('invoice.requested.dlq', dead.handler, { group: 'ops' });
    const producer = await memory({ namespace: 'catalog-di' });
    await producer.publish('invoice.requested', { orderId: 42 });
    await producer.publish('invoice.requested', { orderId: 'A-1' });
    await dead.waitForCount(1, 2_000);
    for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(seen.map((message) => message.body)).toEqual([{ orderId: 'A-1' }]);
    await consumers.stopAll();
  });
});
