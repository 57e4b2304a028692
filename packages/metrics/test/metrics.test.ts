import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { Counter, Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPlugmqMetrics } from '../src/index.js';

const toClose: QueueManager[] = [];
beforeAll(() => registerDriver(memoryDriver));
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((m) => m.close()));
});

async function until(check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('@plugmq/metrics', () => {
  it('counts published, handled by outcome, retried, dead-lettered, duration and in-flight', async () => {
    const registry = new Registry();
    const metrics = createPlugmqMetrics({ registry });
    const queue = await createQueueManager({ driver: 'memory' });
    toClose.push(queue);
    metrics.observe(queue);
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    await queue.consume(
      'm.orders',
      async (message) => {
        if ((message.body as { fail?: boolean }).fail) throw new Error('nope');
        if ((message.body as { block?: boolean }).block) await blocked;
      },
      { group: 'billing', retry: { maxAttempts: 2, initialDelayMs: 1 }, concurrency: 2 },
    );
    await queue.publish('m.orders', {});
    await queue.publish('m.orders', { fail: true });
    await queue.publish('m.orders', { block: true });
    const text = () => metrics.text();
    await until(async () => (await text()).includes('plugmq_messages_dead_lettered_total{'));
    const labels = 'driver="memory",type="m.orders",group="billing"';
    await until(async () => (await text()).includes(`plugmq_in_flight{${labels}} 1`));
    let body = await text();
    expect(body).toContain('plugmq_messages_published_total{driver="memory",type="m.orders"} 3');
    expect(body).toContain(`plugmq_messages_handled_total{${labels},outcome="acked"} 1`);
    expect(body).toContain(`plugmq_messages_handled_total{${labels},outcome="failed"} 2`);
    expect(body).toContain(`plugmq_messages_retried_total{${labels}} 1`);
    expect(body).toContain(
      `plugmq_messages_dead_lettered_total{${labels},dead_letter_type="m.orders.dlq"} 1`,
    );
    expect(body).toContain(`plugmq_handler_duration_seconds_count{${labels},outcome="acked"} 1`);
    release();
    await until(async () => (await text()).includes(`plugmq_in_flight{${labels}} 0`));
    body = await text();
    expect(body).toContain(`plugmq_messages_handled_total{${labels},outcome="acked"} 2`);
    expect(metrics.contentType).toContain('text/plain');
  });

  it('two PlugmqMetrics on one registry share the metrics instead of failing', () => {
    const registry = new Registry();
    const first = createPlugmqMetrics({ registry });
    expect(() => createPlugmqMetrics({ registry })).not.toThrow();
    expect(first.registry).toBe(registry);
  });

  it('histogram buckets are cumulative and sit beside the application metrics of the same registry', async () => {
    const registry = new Registry();
    new Counter({ name: 'app_requests_total', help: 'requests', registers: [registry] }).inc(3);
    const metrics = createPlugmqMetrics({ registry, buckets: [0.01, 0.05] });
    metrics.record({ kind: 'delivered', driver: 'd', type: 't', group: 'g', id: '1', attempt: 1 });
    for (const durationMs of [5, 20, 20, 70]) {
      metrics.record({
        kind: 'handled',
        driver: 'd',
        type: 't',
        group: 'g',
        id: '1',
        attempt: 1,
        outcome: 'acked',
        durationMs,
      });
    }
    const text = await metrics.text();
    const labels = 'driver="d",type="t",group="g",outcome="acked"';
    expect(text).toContain('app_requests_total 3');
    expect(text).toContain(`plugmq_handler_duration_seconds_bucket{${labels},le="0.01"} 1`);
    expect(text).toContain(`plugmq_handler_duration_seconds_bucket{${labels},le="0.05"} 3`);
    expect(text).toContain(`plugmq_handler_duration_seconds_bucket{${labels},le="+Inf"} 4`);
    expect(text).toContain(`plugmq_handler_duration_seconds_count{${labels}} 4`);
    expect(text).toMatch(new RegExp(`plugmq_handler_duration_seconds_sum\\{${labels}\\} 0\\.115`));
    // The in-flight gauge never goes below zero, even for a handled without its delivered.
    expect(text).toContain('plugmq_in_flight{driver="d",type="t",group="g"} 0');
    registry.resetMetrics();
    const reset = await metrics.text();
    expect(reset).toContain(`plugmq_messages_handled_total{${labels}} 0`);
    expect(reset).not.toContain('plugmq_handler_duration_seconds_count');
  });

  it('a foreign metric already using a PlugMQ name is a clear error', () => {
    const registry = new Registry();
    new Counter({ name: 'plugmq_messages_handled_total', help: 'mine', registers: [registry] });
    expect(() => createPlugmqMetrics({ registry })).toThrow(/plugmq_messages_handled_total/);
  });
});

describe('@plugmq/metrics broker-side gauges', () => {
  it('/metrics shows backlog, oldest age and dead letters as inspect() reports them', async () => {
    const registry = new Registry();
    const metrics = createPlugmqMetrics({ registry, inspectIntervalMs: 60_000 });
    const queue = await createQueueManager({ driver: 'memory', namespace: 'metrics-inspect' });
    toClose.push(queue);
    const stop = metrics.observe(queue);
    await (await queue.consume('g.orders', () => {}, { group: 'paused' })).close();
    const failing = await queue.consume(
      'g.orders',
      () => {
        throw new Error('broken');
      },
      { group: 'failing', retry: { maxAttempts: 1 } },
    );
    await queue.publish('g.orders', { n: 1 });
    await queue.publish('g.orders', { n: 2 });
    await until(async () => (await queue.inspect()).deadLetters.some((d) => d.count === 2));
    await metrics.refreshInspection();
    const inspection = await queue.inspect({ types: ['g.orders', 'g.orders.dlq'] });
    const paused = inspection.groups.find((g) => g.group === 'paused');
    expect(paused?.backlog).toBe(2);
    const text = await metrics.text();
    expect(text).toContain('# TYPE plugmq_group_backlog gauge');
    expect(text).toContain('plugmq_group_backlog{driver="memory",type="g.orders",group="paused"} 2');
    expect(text).toContain('plugmq_group_backlog{driver="memory",type="g.orders",group="failing"} 0');
    expect(text).toContain('plugmq_dead_letters{driver="memory",type="g.orders.dlq"} 2');
    const age =
      /plugmq_group_oldest_age_seconds\{driver="memory",type="g.orders",group="paused"\} ([\d.e-]+)/.exec(
        text,
      );
    expect(Number(age?.[1])).toBeGreaterThanOrEqual(0);
    expect(Number(age?.[1])).toBeLessThan(60);
    // Replayed (into groups with no consumer now): the next refresh follows the broker.
    await failing.close();
    expect(await queue.deadLetters.replay('g.orders.dlq', { limit: 1 })).toBe(1);
    await metrics.refreshInspection();
    const after = await metrics.text();
    expect(after).toContain('plugmq_dead_letters{driver="memory",type="g.orders.dlq"} 1');
    expect(after).toContain('plugmq_group_backlog{driver="memory",type="g.orders",group="paused"} 3');
    expect(after).toContain('plugmq_group_backlog{driver="memory",type="g.orders",group="failing"} 1');
    stop();
  });

  it('refuses a bad inspectIntervalMs; without it nothing is inspected', async () => {
    expect(() => createPlugmqMetrics({ registry: new Registry(), inspectIntervalMs: 0 })).toThrow(
      /inspectIntervalMs/,
    );
    const registry = new Registry();
    const metrics = createPlugmqMetrics({ registry });
    const queue = await createQueueManager({ driver: 'memory', namespace: 'metrics-no-inspect' });
    toClose.push(queue);
    metrics.observe(queue);
    await (await queue.consume('g.idle', () => {}, { group: 'paused' })).close();
    await queue.publish('g.idle', 1);
    await metrics.refreshInspection();
    expect(await metrics.text()).not.toContain('plugmq_group_backlog{');
  });
});
