import { ConsumerManager, PlugmqError, type QueueManager } from '@plugmq/core';

export interface WorkloadOptions {
  /** Messages published per second (default 40). */
  readonly rate?: number;
  /** Suffix for group names so durable brokers start clean per run. */
  readonly run?: string;
}

export interface Workload {
  readonly published: () => number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The demo's scenario, continuously: orders shared by competing workers and fanned out to an audit
 * group, payments where every tenth card is declined (retried, then dead-lettered; a payment
 * replayed from the dead-letter type goes through), notices with priorities where the driver has them.
 */
export async function startDemoWorkload(
  queue: QueueManager,
  options: WorkloadOptions = {},
): Promise<Workload> {
  const rate = options.rate ?? 40;
  const run = options.run ?? Date.now().toString(36);
  const consumers = new ConsumerManager(queue);
  consumers.register({
    types: ['demo.orders'],
    group: `fulfilment-${run}`,
    options: { concurrency: 4 },
    handle: () => sleep(5 + Math.random() * 40),
  });
  consumers.register({ types: ['demo.orders'], group: `audit-${run}`, handle: async () => {} });
  consumers.register({
    types: ['demo.payments'],
    group: `payments-${run}`,
    options: { concurrency: 2, retry: { maxAttempts: 3, initialDelayMs: 200, factor: 2 } },
    async handle(message) {
      await sleep(10 + Math.random() * 20);
      const { amount } = message.body as { amount: number };
      if (message.headers['x-plugmq-replayed-from']) return; // an operator replayed it: charged by hand
      if (amount % 10 === 0) throw new Error(`card declined for ${amount} €`);
      if (amount % 7 === 0 && message.attempt === 1) throw new Error('payment provider timed out');
    },
  });
  consumers.register({
    types: ['demo.notices'],
    group: `notices-${run}`,
    handle: () => sleep(2),
  });
  await consumers.startAll();

  let published = 0;
  let payments = 0;
  let stopping = false;
  const supportsPriority = queue.capabilities.priority;
  const loop = (async () => {
    const interval = 1000 / rate;
    let next = performance.now();
    while (!stopping) {
      const n = published++;
      const roll = n % 10;
      try {
        if (roll < 7) await queue.publish('demo.orders', { order: n }, { key: `customer-${n % 13}` });
        // Amounts 1..200 in a scrambled order; every tenth is a multiple of 10 and is declined.
        else if (roll < 9) await queue.publish('demo.payments', { amount: 1 + ((payments++ * 37) % 200) });
        else
          await queue.publish(
            'demo.notices',
            { text: `notice ${n}` },
            supportsPriority ? { priority: n % 10 } : {},
          );
      } catch (error) {
        if (stopping && error instanceof PlugmqError && error.code === 'CLOSED') break;
        throw error;
      }
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -1000) next = performance.now(); // fell behind (e.g. a paused process): do not burst
    }
  })();

  return {
    published: () => published,
    async stop() {
      stopping = true;
      await loop.catch(() => {});
      await consumers.stopAll();
    },
  };
}
