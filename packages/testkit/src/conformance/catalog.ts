import { defineCatalog, type StandardSchemaV1 } from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, expectPlugmqError, sleep } from './helpers.js';

interface Order {
  orderId: string;
  total: number;
}
interface CheckedOrder extends Order {
  /** Added by the schema: the handler must see the schema's output, not the raw body. */
  checked: true;
}

/**
 * An order schema written by hand against Standard Schema v1, so the suite needs no schema
 * library (and shows that none is special): `async` makes `validate` answer with a promise, as
 * zod's async refinements or valibot's `*Async` schemas do.
 */
function orderSchema(async = false): StandardSchemaV1<Order, CheckedOrder> {
  const check = (value: unknown): StandardSchemaV1.Result<CheckedOrder> => {
    const order = value as Partial<Order> | null;
    if (typeof order !== 'object' || order === null) return { issues: [{ message: 'expected an object' }] };
    const issues: StandardSchemaV1.Issue[] = [];
    if (typeof order.orderId !== 'string') issues.push({ message: 'expected a string', path: ['orderId'] });
    if (typeof order.total !== 'number' || order.total < 0) {
      issues.push({ message: 'expected a number >= 0', path: [{ key: 'total' }] });
    }
    return issues.length > 0 ? { issues } : { value: { ...(order as Order), checked: true } };
  };
  return {
    '~standard': {
      version: 1,
      vendor: 'plugmq-conformance',
      validate: async
        ? async (value) => {
            await sleep(1);
            return check(value);
          }
        : check,
    },
  };
}

/** Message catalogs: schemas checked at publish and on every delivery, on every driver. */
export function catalogScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);

  for (const async of [false, true]) {
    const kind = async ? 'an async schema' : 'a schema';

    test(`${kind}: publish of a body that fails it is INVALID_ARGUMENT naming the path, and nothing is sent`, async () => {
      const type = env.type('catalog');
      const queue = defineCatalog({ [type]: orderSchema(async) }).attach(await env.create());
      const got = collector<CheckedOrder>();
      await queue.consume<string>(type, got.handler, { group: env.group() });
      await expectPlugmqError(
        () => queue.publish(type, { orderId: 'A-1', total: -3 }),
        'INVALID_ARGUMENT',
        'body.total: expected a number >= 0',
      );
      await expectPlugmqError(
        () => queue.publish(type, 'not an order' as unknown as Order),
        'INVALID_ARGUMENT',
        'body',
      );
      await expectPlugmqError(
        () =>
          queue.publishBatch([
            { type, body: { orderId: 'A-2', total: 1 } },
            { type, body: { orderId: 7, total: 1 } as unknown as Order },
          ]),
        'INVALID_ARGUMENT',
        'items[1].body.orderId',
      );
      await queue.publish(type, { orderId: 'A-3', total: 9 });
      const [message] = await got.waitForCount(1, env.patience);
      expect(message?.body).toEqual({ orderId: 'A-3', total: 9, checked: true });
      await got.expectNoMore(1, env.quiet);
    });

    test(`${kind}: a delivery that fails it goes to the dead-letter type at once with INVALID_MESSAGE, never to the handler`, async () => {
      const type = env.type('catalog');
      // The producer has no catalog (another service, an older version): only the consumer checks.
      const producer = await env.create();
      const consumer = defineCatalog({ [type]: orderSchema(async) }).attach(await env.create());
      const got = collector<CheckedOrder>();
      const dead = collector<unknown>();
      await consumer.consume(`${type}.dlq`, dead.handler, { group: env.group('dlq') });
      await consumer.consume<string>(type, got.handler, {
        group: env.group(),
        retry: { maxAttempts: 3, initialDelayMs: 10 },
      });
      const badId = await producer.publish(type, { orderId: 'B-1', total: 'ten' }, { key: 'customer-9' });
      await producer.publish(type, { orderId: 'B-2', total: 10 });

      const [letter] = await dead.waitForCount(1, env.patience);
      expect(letter?.id).toBe(badId);
      expect(letter?.key).toBe('customer-9');
      expect(letter?.body).toEqual({ orderId: 'B-1', total: 'ten' });
      expect(letter?.headers['x-plugmq-error']).toMatch(/^INVALID_MESSAGE: .*body\.total: expected a number/);
      expect(letter?.headers['x-plugmq-original-type']).toBe(type);
      expect(letter?.headers['x-plugmq-attempts']).toBe('1');

      const [message] = await got.waitForCount(1, env.patience);
      expect(message?.body).toEqual({ orderId: 'B-2', total: 10, checked: true });
      await got.expectNoMore(1, env.quiet);
      await dead.expectNoMore(1, 0);
    });
  }

  test('types outside the catalog, and the dead-letter type, are not checked', async () => {
    const type = env.type('catalog');
    const plain = env.type('plain');
    const manager = await env.create();
    // The attached manager is the same object: its plain QueueManager signatures stay usable.
    expect(defineCatalog({ [type]: orderSchema() }).attach(manager)).toBe(manager);
    const got = collector<unknown>();
    await manager.consume([plain, `${type}.dlq`], got.handler, { group: env.group() });
    await manager.publish(plain, { anything: true });
    await manager.publish(`${type}.dlq`, 'a hand-made dead letter');
    await got.waitForCount(2, env.patience);
    expect(got.bodies()).toEqual(expect.arrayContaining([{ anything: true }, 'a hand-made dead letter']));
  });
}
