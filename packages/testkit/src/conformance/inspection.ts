import type { GroupState, Inspection, QueueManager } from '@plugmq/core';
import { expect, it, type TestContext, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, expectPlugmqError, waitFor } from './helpers.js';

/**
 * `inspect()` and dead letters at rest: what the broker holds, read by any process. Drivers
 * without `Transport.inspect` (inspect() rejects UNSUPPORTED) skip all but the refusal scenario.
 */
export function inspectionScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);
  const noRetry = { maxAttempts: 1 };

  /** Skips the running test when the driver cannot inspect; returns whether it can. */
  const inspectable = async (context: TestContext, manager: QueueManager): Promise<void> => {
    try {
      await manager.inspect({ types: [env.type('probe')] });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'UNSUPPORTED') throw error;
      context.skip(`${env.options.name}: inspect() is UNSUPPORTED (the transport has no inspect)`);
    }
  };

  /** Polls inspect() (some brokers publish statistics with a delay) until `check` holds. */
  const inspectUntil = async (
    manager: QueueManager,
    types: string[],
    check: (inspection: Inspection) => boolean,
    what: string,
  ): Promise<Inspection> => {
    let last: Inspection | undefined;
    try {
      await waitFor(
        async () => {
          last = await manager.inspect({ types });
          return check(last);
        },
        env.ms(15_000),
        what,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; last inspection: ${JSON.stringify(last)}`);
    }
    return last as Inspection;
  };

  const groupOf = (inspection: Inspection, type: string, group: string): GroupState | undefined =>
    inspection.groups.find((state) => state.type === type && state.group === group);
  const deadCount = (inspection: Inspection, type: string): number | undefined =>
    inspection.deadLetters.find((state) => state.type === type)?.count;

  test('inspect, browse and replay refuse bad arguments with INVALID_ARGUMENT', async () => {
    const manager = await env.create();
    const type = env.type();
    await expectPlugmqError(() => manager.inspect({ types: 'x' as never }), 'INVALID_ARGUMENT', 'types');
    await expectPlugmqError(
      () => manager.inspect({ groups: [{ type, group: '' }] }),
      'INVALID_ARGUMENT',
      'group',
    );
    await expectPlugmqError(() => manager.deadLetters.browse(''), 'INVALID_ARGUMENT', 'type');
    await expectPlugmqError(
      () => manager.deadLetters.browse(`${type}.dlq`, { limit: 0 }),
      'INVALID_ARGUMENT',
      'limit',
    );
    await expectPlugmqError(
      () => manager.deadLetters.replay(`${type}.dlq`, { limit: 1.5 }),
      'INVALID_ARGUMENT',
      'limit',
    );
  });

  test('a driver without inspect refuses inspect() and browse with UNSUPPORTED', async (context) => {
    const manager = await env.create();
    try {
      await manager.inspect();
    } catch (error) {
      expect((error as { code?: unknown }).code).toBe('UNSUPPORTED');
      await expectPlugmqError(() => manager.deadLetters.browse(`${env.type()}.dlq`), 'UNSUPPORTED');
      return;
    }
    context.skip(`${env.options.name}: inspect() is supported`);
  });

  test('a stopped group shows its backlog (N publishes), the running group none', async (context) => {
    const manager = await env.create();
    await inspectable(context, manager);
    const type = env.type();
    const running = env.group('running');
    const stopped = env.group('stopped');
    const count = 12;
    // Subscribed once, then closed: the broker keeps the group, nobody takes from it.
    await (await manager.consume(type, () => {}, { group: stopped })).close();
    const got = collector();
    await manager.consume(type, got.handler, { group: running, concurrency: 4 });
    for (let index = 0; index < count; index++) await manager.publish(type, { index });
    await got.waitForCount(count, env.patience);
    const inspection = await inspectUntil(
      manager,
      [type],
      (state) => {
        const kept = groupOf(state, type, stopped);
        const live = groupOf(state, type, running);
        return (
          kept !== undefined &&
          kept.backlog + (kept.inFlight ?? 0) === count &&
          live !== undefined &&
          live.backlog === 0
        );
      },
      `backlog ${count} on the stopped group, 0 on the running one`,
    );
    expect(inspection.driver).toBe(manager.driver);
    expect(inspection.takenAt).toBeGreaterThan(Date.now() - env.ms(60_000));
    const kept = groupOf(inspection, type, stopped)!;
    expect(kept.consumers ?? 0).toBe(0);
    if (kept.oldestWaitingMs !== undefined) expect(kept.oldestWaitingMs).toBeGreaterThanOrEqual(0);
    const live = groupOf(inspection, type, running)!;
    if (live.consumers !== undefined) expect(live.consumers).toBeGreaterThanOrEqual(1);
    expect(inspection.groups.every((state) => state.type === type)).toBe(true);
  });

  test('dead letters are counted at rest: K failures make the dead-letter count K', async (context) => {
    const manager = await env.create();
    await inspectable(context, manager);
    const type = env.type();
    const dlq = `${type}.dlq`;
    const attempts = collector(() => {
      throw new Error('always fails');
    });
    await manager.consume(type, attempts.handler, { group: env.group(), retry: noRetry });
    // Reported from the moment the consumer subscribed, before anything failed.
    await inspectUntil(manager, [dlq], (state) => deadCount(state, dlq) === 0, `${dlq} listed with 0`);
    const count = 3;
    for (let index = 0; index < count; index++) await manager.publish(type, { index });
    await attempts.waitForCount(count, env.patience);
    const inspection = await inspectUntil(
      manager,
      [type, dlq],
      (state) => deadCount(state, dlq) === count,
      `${count} dead letters of ${dlq}`,
    );
    const dead = inspection.deadLetters.find((state) => state.type === dlq)!;
    if (dead.oldestAgeMs !== undefined) expect(dead.oldestAgeMs).toBeGreaterThanOrEqual(0);
    // The reserved group is reported as dead letters, never as a consumer group.
    expect(inspection.groups.some((state) => state.type === dlq)).toBe(false);
  });

  test('a dead letter stored before a second manager existed is browsed and replayed by it', async (context) => {
    const app = await env.create();
    await inspectable(context, app);
    const type = env.type();
    const dlq = `${type}.dlq`;
    let broken = true;
    const got = collector(() => {
      if (broken) throw new Error('downstream unavailable: 503');
    });
    await app.consume(type, got.handler, { group: env.group(), retry: noRetry });
    const first = await app.publish(type, { order: 1 }, { key: 'k-1', headers: { 'x-trace': 't-1' } });
    const second = await app.publish(type, { order: 2 }, { key: 'k-2' });
    await got.waitForCount(2, env.patience);
    await inspectUntil(app, [dlq], (state) => deadCount(state, dlq) === 2, `2 dead letters of ${dlq}`);

    const dashboard = await env.create();
    let records = await dashboard.deadLetters.browse(dlq);
    expect(records.map((record) => record.id)).toEqual([first, second]);
    const [record] = records;
    expect(record).toMatchObject({
      id: first,
      type: dlq,
      originalType: type,
      attempts: 1,
      key: 'k-1',
      body: { order: 1 },
    });
    expect(record?.error).toContain('downstream unavailable: 503');
    expect(record?.headers['x-trace']).toBe('t-1');
    expect(record?.headers['x-plugmq-error']).toBeUndefined();
    expect(record?.timestamp).toBeGreaterThan(0);
    // Browsing takes nothing.
    expect(await dashboard.deadLetters.browse(dlq, { limit: 1 })).toHaveLength(1);
    expect(await dashboard.deadLetters.browse(dlq)).toHaveLength(2);

    broken = false;
    expect(await dashboard.deadLetters.replay(dlq, { limit: 1 })).toBe(1);
    const [, , replayed] = await got.waitForCount(3, env.patience);
    expect(replayed).toMatchObject({ id: first, type, attempt: 1, key: 'k-1', body: { order: 1 } });
    expect(replayed?.headers['x-trace']).toBe('t-1');
    expect(replayed?.headers['x-plugmq-error']).toBeUndefined();
    records = await dashboard.deadLetters.browse(dlq);
    expect(records.map((left) => left.id)).toEqual([second]);

    expect(await dashboard.deadLetters.replay(dlq)).toBe(1);
    const all = await got.waitForCount(4, env.patience);
    expect(all[3]?.id).toBe(second);
    expect(await dashboard.deadLetters.browse(dlq)).toEqual([]);
    await inspectUntil(dashboard, [dlq], (state) => (deadCount(state, dlq) ?? 0) === 0, `${dlq} emptied`);
    expect(await dashboard.deadLetters.replay(dlq)).toBe(0);
    await got.expectNoMore(4, env.quiet);
  });

  test('replay with a limit takes exactly that many, oldest first; the rest stay stored', async (context) => {
    const app = await env.create();
    await inspectable(context, app);
    const type = env.type();
    const dlq = `${type}.dlq`;
    let broken = true;
    const got = collector<number>(() => {
      if (broken) throw new Error('not yet');
    });
    // One key and one handler at a time: the replayed messages, republished with their key, come
    // back in replay order on every driver. Unkeyed, a Kafka topic of several partitions hands
    // them over in any order across partitions (a platformatic CI run delivered 3 before 2).
    await app.consume(type, got.handler, { group: env.group(), retry: noRetry, concurrency: 1 });
    const ids: string[] = [];
    for (let index = 0; index < 12; index++)
      ids.push(await app.publish(type, index, { key: 'replay-order' }));
    await got.waitForCount(12, env.patience);
    await inspectUntil(app, [dlq], (state) => deadCount(state, dlq) === 12, `12 dead letters of ${dlq}`);
    broken = false;
    const replayer = await env.create();
    expect(await replayer.deadLetters.replay(dlq, { limit: 7 })).toBe(7);
    const replayed = (await got.waitForCount(19, env.patience)).slice(12);
    // Oldest first is the order they were dead-lettered, which is the order the failing
    // deliveries came.
    const deadLettered = got.bodies().slice(0, 12);
    expect(replayed.map((message) => message.body)).toEqual(deadLettered.slice(0, 7));
    // The rest stay stored, but not necessarily in publish order: one the replay had fetched
    // ahead (a broker's prefetch) and handed back may go to the end (Redis, quorum queues), as
    // the drivers' READMEs say.
    const left = await replayer.deadLetters.browse(dlq);
    expect(left.map((record) => record.id).sort()).toEqual(
      deadLettered
        .slice(7)
        .map((body) => ids[body])
        .sort(),
    );
    expect(await replayer.deadLetters.replay(dlq)).toBe(5);
    const rest = (await got.waitForCount(24, env.patience)).slice(19);
    expect(rest.map((message) => message.body).sort((a, b) => a - b)).toEqual(
      deadLettered.slice(7).sort((a, b) => a - b),
    );
    await got.expectNoMore(24, env.quiet);
  });
}
