import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  applyMiddleware,
  type Consumer,
  type ConsumerManager,
  configFromEnv,
  createContainer,
  createQueueManager,
  defineCatalog,
  MemoryIdempotencyStore,
  type Message,
  type QueueManager,
  registerDriver,
  TYPES,
  UnrecoverableError,
  withIdempotency,
  withTimeout,
} from '../src/index.js';

// The examples of packages/core/README.md, as written there (the environment aside): a reader
// copies them from the npm page, so they must compile under strict settings without decorators.
beforeAll(() => registerDriver(memoryDriver));

class InvoiceConsumer implements Consumer<{ orderId: string }> {
  readonly types = ['orders.created'];
  readonly group = 'invoicing';
  readonly options = { concurrency: 4, retry: { maxAttempts: 3 } };
  constructor(private readonly queue: QueueManager) {}
  async handle(message: Message<{ orderId: string }>) {
    await this.queue.publish('invoices.requested', { orderId: message.body.orderId });
  }
}

describe('core README examples', () => {
  it('dependency injection without decorators', async () => {
    const container = await createContainer(configFromEnv({ PLUGMQ_NAMESPACE: 'readme-di' }));
    container
      .bind(InvoiceConsumer)
      .toResolvedValue((queue: QueueManager) => new InvoiceConsumer(queue), [TYPES.QueueManager]);
    const consumers = container.get<ConsumerManager>(TYPES.ConsumerManager);
    consumers.register(container.get(InvoiceConsumer));
    await consumers.startAll();

    const queue = container.get<QueueManager>(TYPES.QueueManager);
    const requested: Message<{ orderId: string }>[] = [];
    await queue.consume<{ orderId: string }>(
      'invoices.requested',
      (message) => void requested.push(message),
      {
        group: 'check',
      },
    );
    await queue.publish('orders.created', { orderId: 'A-17' });
    for (let i = 0; i < 100 && requested.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(requested[0]?.body).toEqual({ orderId: 'A-17' });
    await consumers.stopAll();
    await queue.close();
  });

  it('request/reply', async () => {
    const queue = await createQueueManager({ driver: 'memory', namespace: 'readme-rr' });
    try {
      await queue.respond<{ a: number; b: number }, number>(
        'math.add',
        (message) => message.body.a + message.body.b,
      );
      const sum = await queue.request<{ a: number; b: number }, number>(
        'math.add',
        { a: 2, b: 3 },
        { timeoutMs: 5_000 },
      );
      expect(sum).toBe(5);
    } finally {
      await queue.close();
    }
  });

  it('message catalog and schemas', async () => {
    const catalog = defineCatalog({
      'order.placed': z.object({
        orderId: z.string(),
        total: z.number().nonnegative(),
        placedAt: z.iso.datetime(),
      }),
      'order.shipped': z.object({ orderId: z.string(), carrier: z.enum(['ups', 'dhl']) }),
    });
    const queue = catalog.attach(await createQueueManager({ driver: 'memory', namespace: 'readme-catalog' }));
    try {
      const totals: number[] = [];
      await queue.consume(
        'order.placed',
        async (message) => {
          expectTypeOf(message.body.total).toEqualTypeOf<number>();
          totals.push(message.body.total);
        },
        { group: 'billing' },
      );
      await queue.publish('order.placed', { orderId: 'A-17', total: 42, placedAt: new Date().toISOString() });
      await expect(
        queue.publish('order.placed', { orderId: 'A-18', total: -1, placedAt: '2026-12-04T10:00:00Z' }),
      ).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^body does not match the schema of order\.placed: body\.total: /),
      });
      for (let i = 0; i < 100 && totals.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(totals).toEqual([42]);
    } finally {
      await queue.close();
    }
  });

  it('errors that must not be retried, and idempotent consumers', async () => {
    interface Order {
      sku?: string;
    }
    class ValidationError extends Error {}
    const queue = await createQueueManager({ driver: 'memory', namespace: 'readme-handler-control' });
    try {
      const dead: Message<Order>[] = [];
      await queue.consume<Order>('orders.created.dlq', (message) => void dead.push(message), {
        group: 'ops',
      });
      await queue.consume<Order>(
        'orders.created',
        async (message) => {
          if (!message.body.sku) throw new UnrecoverableError('order without sku');
          throw new ValidationError('bad sku');
        },
        {
          group: 'billing',
          retry: { maxAttempts: 5, shouldRetry: (error) => !(error instanceof ValidationError) },
        },
      );
      const charged: string[] = [];
      const chargeCard = (message: Message<unknown>) => void charged.push(message.id);
      const store = new MemoryIdempotencyStore();
      await queue.consume(
        'payments.requested',
        applyMiddleware(
          chargeCard,
          withTimeout(30_000),
          withIdempotency({ store, group: 'billing', ttlMs: 86_400_000 }),
        ),
        { group: 'billing' },
      );
      await queue.publish('orders.created', {});
      await queue.publish('orders.created', { sku: 'x' });
      for (const _ of [1, 2]) await queue.publish('payments.requested', { amount: 5 }, { id: 'pay-1' });
      for (let i = 0; i < 200 && (dead.length < 2 || charged.length < 1); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(dead.map((m) => m.headers['x-plugmq-attempts'])).toEqual(['1', '1']);
      expect(charged).toEqual(['pay-1']);
    } finally {
      await queue.close();
    }
  });

  it('dead letters at rest: browse and replay from a manager started later', async () => {
    const app = await createQueueManager({ driver: 'memory', namespace: 'readme-dlq' });
    let fixed = false;
    const handled: string[] = [];
    try {
      await app.consume(
        'orders.created',
        (message) => {
          if (!fixed) throw new Error('downstream unavailable');
          handled.push(message.id);
        },
        { group: 'billing', retry: { maxAttempts: 1 } },
      );
      const id = await app.publish('orders.created', { orderId: 'o-1' });
      for (let i = 0; i < 200 && (await app.inspect()).deadLetters.every((d) => d.count === 0); i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      fixed = true;
      const logged: unknown[][] = [];
      const console = { log: (...values: unknown[]) => void logged.push(values) };

      // as in the README:
      const dashboard = await createQueueManager(configFromEnv({ PLUGMQ_NAMESPACE: 'readme-dlq' }));
      for (const dead of await dashboard.deadLetters.browse('orders.created.dlq', { limit: 20 }))
        console.log(dead.id, dead.error);
      const replayed = await dashboard.deadLetters.replay('orders.created.dlq'); // all stored now

      expect(logged).toEqual([[id, 'Error: downstream unavailable']]);
      expect(replayed).toBe(1);
      for (let i = 0; i < 200 && handled.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(handled).toEqual([id]);
      await dashboard.close();
    } finally {
      await app.close();
    }
  });
});
