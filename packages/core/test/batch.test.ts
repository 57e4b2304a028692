import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  type BatchConsumeOptions,
  type BatchContext,
  type BatchHandler,
  createQueueManager,
  type Message,
  type QueueManager,
  registerDriver,
  type Subscription,
} from '../src/index.js';

beforeAll(() => registerDriver(memoryDriver));

const managers: QueueManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});
async function memory(): Promise<QueueManager> {
  const manager = await createQueueManager({ driver: 'memory', namespace: `batch-${Math.random()}` });
  managers.push(manager);
  return manager;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (predicate()) return;
    await sleep(10);
  }
  throw new Error(`${what} did not happen within 5 s`);
}

describe('consumeBatch types', () => {
  it('types the messages from the generic and takes consume options without concurrency', () => {
    type Order = { orderId: string };
    expectTypeOf<QueueManager['consumeBatch']>().returns.toEqualTypeOf<Promise<Subscription>>();
    expectTypeOf<BatchHandler<Order>>().parameter(0).toEqualTypeOf<readonly Message<Order>[]>();
    expectTypeOf<BatchHandler<Order>>().parameter(1).toEqualTypeOf<BatchContext<Order>>();
    expectTypeOf<BatchContext<Order>['fail']>().parameter(0).toEqualTypeOf<Message<Order>>();
    expectTypeOf<BatchContext<Order>['signal']>().toEqualTypeOf<AbortSignal>();
    expectTypeOf<BatchConsumeOptions>().toHaveProperty('maxBatchSize').toEqualTypeOf<number | undefined>();
    expectTypeOf<BatchConsumeOptions>().toHaveProperty('maxWaitMs').toEqualTypeOf<number | undefined>();
    expectTypeOf<BatchConsumeOptions>().not.toHaveProperty('concurrency');
    const check = (queue: QueueManager) =>
      queue.consumeBatch<Order>(
        'orders.created',
        (messages, { fail }) => {
          expectTypeOf(messages[0]!.body).toEqualTypeOf<Order>();
          fail(messages[0]!, new Error('no'));
        },
        { group: 'g', maxBatchSize: 10 },
      );
    expectTypeOf(check).returns.toEqualTypeOf<Promise<Subscription>>();
  });
});

describe('consumeBatch on the core delivery path', () => {
  it('the README example: fail() retries only the rows the insert rejected', async () => {
    const queue = await memory();
    const inserted: string[] = [];
    const db = {
      async insertMany(rows: { orderId: string }[]) {
        const rejected: { index: number; error: Error }[] = [];
        rows.forEach((row, index) => {
          if (row.orderId === 'bad') rejected.push({ index, error: new Error('constraint') });
          else inserted.push(row.orderId);
        });
        return rejected;
      },
    };
    const attempts: number[] = [];
    await queue.consumeBatch<{ orderId: string }>(
      'orders.created',
      async (messages, { fail }) => {
        for (const message of messages) if (message.body.orderId === 'bad') attempts.push(message.attempt);
        const rejected = await db.insertMany(messages.map((message) => message.body));
        for (const { index, error } of rejected) fail(messages[index]!, error);
      },
      { group: 'warehouse', maxBatchSize: 500, maxWaitMs: 50, retry: { maxAttempts: 3, initialDelayMs: 10 } },
    );
    await queue.publishBatch(
      ['A', 'bad', 'B'].map((orderId) => ({ type: 'orders.created', body: { orderId } })),
    );
    await until(() => attempts.length === 3, 'three attempts of the bad row');
    expect(inserted).toEqual(['A', 'B']);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('close waits for the batch that is still gathering and hands it to the handler', async () => {
    const queue = await memory();
    const handled: number[] = [];
    const subscription = await queue.consumeBatch<number>(
      'gather',
      (messages) => void handled.push(...messages.map((message) => message.body)),
      { group: 'g', maxBatchSize: 100, maxWaitMs: 300 },
    );
    await queue.publishBatch([1, 2].map((body) => ({ type: 'gather', body })));
    await sleep(20);
    expect(handled).toEqual([]);
    await subscription.close();
    expect(handled).toEqual([1, 2]);
  });

  it('fail() after the handler returned, or with a message of another batch, is INVALID_ARGUMENT', async () => {
    const queue = await memory();
    let late: (() => void) | undefined;
    let foreign: unknown;
    await queue.consumeBatch<number>(
      'misuse',
      (messages, context) => {
        late = () => context.fail(messages[0]!);
        try {
          context.fail({ ...messages[0]!, id: 'not-in-this-batch' });
        } catch (error) {
          foreign = error;
        }
      },
      { group: 'g', maxWaitMs: 0 },
    );
    await queue.publish('misuse', 1);
    await until(() => late !== undefined, 'the batch');
    expect(foreign).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => late?.()).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
