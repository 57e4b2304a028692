import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { createDashboard, type Dashboard, type DashboardOptions } from '../src/index.js';

registerDriver(memoryDriver);

export interface Running {
  queue: QueueManager;
  dashboard: Dashboard;
  url: string;
  close(): Promise<void>;
}

/** A memory manager with a dashboard on a free loopback port. */
export async function startDashboard(options: Partial<DashboardOptions> = {}): Promise<Running> {
  const queue = await createQueueManager({ driver: 'memory' });
  const dashboard = await createDashboard({ queue, intervalMs: 200, ...options });
  const { url } = await dashboard.listen(0);
  return {
    queue,
    dashboard,
    url,
    async close() {
      await dashboard.close();
      await queue.close();
    },
  };
}

export async function until<T>(check: () => T | Promise<T>, ms = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A consumer that fails each message until `fixed` is set: the dead-letter then replay story. */
export async function flakyConsumer(queue: QueueManager, type: string) {
  const state = { fixed: false, handled: [] as unknown[] };
  await queue.consume(
    type,
    (message) => {
      if (!state.fixed) throw new Error('payment provider down');
      state.handled.push(message.body);
    },
    { group: 'payments', retry: { maxAttempts: 2, initialDelayMs: 5 } },
  );
  return state;
}
