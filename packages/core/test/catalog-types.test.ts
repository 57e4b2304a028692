import { driver as memoryDriver } from '@plugmq/adapter-memory';
import * as v from 'valibot';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  type CatalogBody,
  type CatalogQueueManager,
  type Consumer,
  createQueueManager,
  defineCatalog,
  type Message,
  type QueueManager,
  registerDriver,
} from '../src/index.js';

// Checked by `pnpm typecheck` (tsc covers test/); at run time expectTypeOf does nothing, and the
// run checks that what does not compile is refused at run time too.
const catalog = defineCatalog({
  'order.placed': z.object({ orderId: z.string(), placedAt: z.string().transform((s) => new Date(s)) }),
  'order.shipped': v.object({ orderId: v.string(), carrier: v.picklist(['ups', 'dhl']) }),
});
type Schemas = typeof catalog.schemas;
let plain: QueueManager;
let queue: CatalogQueueManager<Schemas>;
beforeAll(async () => {
  registerDriver(memoryDriver);
  plain = await createQueueManager({ driver: 'memory', namespace: 'catalog-types' });
  queue = catalog.attach(plain);
});
afterAll(() => plain.close());

describe('catalog typing', () => {
  it('handlers get the schema output without a generic at the call site', async () => {
    await queue.consume(
      'order.placed',
      (message) => {
        expectTypeOf(message.body).toEqualTypeOf<{ orderId: string; placedAt: Date }>();
        expectTypeOf(message.type).toEqualTypeOf<'order.placed'>();
      },
      { group: 'g' },
    );
    await queue.consume(
      ['order.placed', 'order.shipped'],
      (message) => {
        if (message.type === 'order.shipped') {
          expectTypeOf(message.body).toEqualTypeOf<{ orderId: string; carrier: 'ups' | 'dhl' }>();
        } else {
          expectTypeOf(message.body.placedAt).toEqualTypeOf<Date>();
        }
      },
      { group: 'g' },
    );
    // A type outside the catalog: an unknown body, as plain consume without a generic.
    await queue.consume(
      'audit.logged',
      (message) => {
        expectTypeOf(message.body).toEqualTypeOf<unknown>();
      },
      { group: 'g' },
    );
  });

  it('publish takes the schema input and refuses a wrong body at compile time', async () => {
    await queue.publish('order.placed', { orderId: 'A', placedAt: '2026-12-04T10:00:00Z' });
    await expect(
      // @ts-expect-error placedAt is the input (a string), not the output Date
      queue.publish('order.placed', { orderId: 'A', placedAt: new Date() }),
    ).rejects.toThrow(/body\.placedAt/);
    await expect(
      // @ts-expect-error carrier must be 'ups' or 'dhl'
      queue.publish('order.shipped', { orderId: 'A', carrier: 'fedex' }),
    ).rejects.toThrow(/body\.carrier/);
    await queue.publish('audit.logged', { anything: 1 });
    await queue.publishBatch([
      { type: 'order.shipped', body: { orderId: 'A', carrier: 'ups' } },
      { type: 'order.placed', body: { orderId: 'A', placedAt: '2026-12-04T10:00:00Z' } },
    ]);
    await expect(
      // @ts-expect-error each item's body is checked against its own type
      queue.publishBatch([{ type: 'order.placed', body: { orderId: 'A', carrier: 'ups' } }]),
    ).rejects.toThrow(/items\[0\]\.body\.placedAt/);
    await queue.publishBatch([
      { type: 'audit.logged', body: 1 },
      { type: 'order.placed', body: { orderId: 'A', placedAt: '2026-12-04T10:00:00Z' } },
    ]);
  });

  it('the typed manager is still a QueueManager; bodies can be named for Consumer classes', () => {
    expectTypeOf(catalog.attach(plain)).toEqualTypeOf<CatalogQueueManager<Schemas>>();
    const asPlain: QueueManager = queue;
    void asPlain;
    expectTypeOf<CatalogBody<Schemas, 'order.shipped'>>().toEqualTypeOf<{
      orderId: string;
      carrier: 'ups' | 'dhl';
    }>();
    const shipped: Consumer<CatalogBody<Schemas, 'order.shipped'>> = {
      types: ['order.shipped'],
      group: 'g',
      handle: async (message) => {
        expectTypeOf(message).toEqualTypeOf<Message<{ orderId: string; carrier: 'ups' | 'dhl' }>>();
      },
    };
    void shipped;
  });
});
