import { createQueueManager, PlugmqError, type QueueManager } from '@plugmq/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashboard, createHealthProbes, type FleetSnapshot } from '../src/index.js';
import { type Running, startDashboard, until } from './helpers.js';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const getJson = async <T>(url: string): Promise<T> => (await fetch(url)).json() as Promise<T>;

describe('fleet view (/api/inspect)', () => {
  it('polls inspect(): backlog growing, groups without consumers, dead letters at rest', async () => {
    running = await startDashboard({ inspectIntervalMs: 100 });
    const { queue, url } = running;
    let holding = true;
    const waiting: (() => void)[] = [];
    await queue.consume(
      'fleet.jobs',
      () => (holding ? new Promise<void>((r) => waiting.push(r)) : undefined),
      {
        group: 'slow',
      },
    );
    const idle = await queue.consume('fleet.jobs', () => {}, { group: 'idle' });
    await idle.close();
    const publisher = setInterval(() => void queue.publish('fleet.jobs', {}), 30);
    try {
      const fleet = await until(async () => {
        const f = await getJson<FleetSnapshot>(`${url}api/inspect`);
        return f.groups.find((g) => g.group === 'slow')?.growing ? f : undefined;
      });
      expect(fleet.supported).toBe(true);
      expect(fleet.intervalMs).toBe(100);
      expect(fleet.groups.find((g) => g.group === 'slow')?.trend).toBeGreaterThan(0);
      expect(fleet.groups.find((g) => g.group === 'idle')).toMatchObject({ consumers: 0 });
      // The dashboard's own dead-letter reader is not part of the fleet.
      expect(fleet.groups.some((g) => g.group === 'plugmq.dashboard')).toBe(false);
      expect(fleet.deadLetters.map((d) => d.type)).toContain('fleet.jobs.dlq');
      const stats = await getJson<{ fleet: FleetSnapshot }>(`${url}api/stats`);
      expect(stats.fleet.supported).toBe(true);
    } finally {
      clearInterval(publisher);
      holding = false;
      for (const release of waiting) release();
    }
  });

  it('a driver without inspect: the view says so; inspectIntervalMs false turns it off', async () => {
    const queue = await createQueueManager({ driver: 'memory' });
    const blind = new Proxy(queue, {
      get(target, name, receiver) {
        if (name === 'inspect')
          return () =>
            Promise.reject(
              new PlugmqError('UNSUPPORTED', 'the blind driver cannot report broker-side state'),
            );
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as QueueManager;
    const dashboard = await createDashboard({ queue: blind, inspectIntervalMs: 50 });
    const off = await createDashboard({ queue, inspectIntervalMs: false });
    try {
      expect(dashboard.fleet?.snapshot()).toMatchObject({
        supported: false,
        reason: expect.stringContaining('blind'),
      });
      expect(off.fleet).toBeUndefined();
    } finally {
      await dashboard.close();
      await off.close();
      await queue.close();
    }
  });
});

describe('health probes (/livez, /readyz)', () => {
  it('ready once every subscription is live, 503 naming the manager once it is closed; live until closed', async () => {
    running = await startDashboard();
    const { queue, url } = running;
    await queue.consume('probe.jobs', () => {}, { group: 'workers' });
    const ready = await fetch(`${url}readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; reasons: string[]; health: { details: object } };
    expect(body).toMatchObject({ status: 'ok', reasons: [] });
    expect(body.health.details).toMatchObject({
      subscriptionStates: expect.arrayContaining([
        expect.objectContaining({ group: 'workers', state: 'live' }),
      ]),
    });
    const live = await fetch(`${url}livez`);
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: 'ok', eventLoopDelayMs: expect.any(Number) });

    await queue.close();
    const notReady = await fetch(`${url}readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({
      status: 'failing',
      reasons: ['the queue manager is closed'],
    });
    expect((await fetch(`${url}livez`)).status).toBe(503);
  });

  it('a subscription still starting makes readiness fail and says which; a probe server of its own', async () => {
    const queue = await createQueueManager({ driver: 'memory' });
    const health = queue.health.bind(queue);
    const starting = { group: 'billing', types: ['orders'], state: 'starting' };
    const slow = new Proxy(queue, {
      get(target, name, receiver) {
        if (name === 'health')
          return async () => {
            const report = await health();
            return { ...report, details: { ...report.details, notLive: [starting] } };
          };
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as QueueManager;
    const probes = createHealthProbes(slow, { healthTimeoutMs: 500 });
    try {
      const { url } = await probes.listen(0, '127.0.0.1');
      const response = await fetch(`${url}readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ reasons: ['subscription billing (orders) is starting'] });
      expect((await fetch(`${url}livez`)).status).toBe(200);
      expect((await fetch(`${url}other`)).status).toBe(404);
      expect(() => createHealthProbes(queue, { healthTimeoutMs: 0 })).toThrow(/must be positive/);
    } finally {
      await probes.close();
      await queue.close();
    }
  });
});
