import { createQueueManager, isPlugmqError, type QueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, uniqueGroup, uniqueType } from '@plugmq/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import { validateKafkaConfig } from '../src/options.js';
import { priorityBand, priorityTopic } from '../src/topology.js';
import { kafkaBroker, TEST_OPTIONS } from './broker.js';

registerDriver(driver);

// `priorityLevels` on kafkajs (the conformance suite covers it on platformatic): band topics,
// the highest band handed out first, delayed messages moved to their band, inspect folding.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('priorityLevels option', () => {
  test('0 (default) and 2..10 are accepted; anything else is CONFIG_INVALID saying what to use', () => {
    expect(validateKafkaConfig({ driver: 'kafka' }).priorityLevels).toBe(0);
    expect(validateKafkaConfig({ driver: 'kafka', priorityLevels: 2 }).priorityLevels).toBe(2);
    expect(validateKafkaConfig({ driver: 'kafka', priorityLevels: 10 }).priorityLevels).toBe(10);
    for (const bad of [1, 11, -1, 2.5, '5', true]) {
      let caught: unknown;
      try {
        validateKafkaConfig({ driver: 'kafka', priorityLevels: bad });
      } catch (error) {
        caught = error;
      }
      expect(isPlugmqError(caught, 'CONFIG_INVALID'), String(bad)).toBe(true);
      expect((caught as Error).message).toMatch(/priorityLevels.*0 \(off\) or an integer from 2 to 10/);
    }
  });

  test('bands share the range 0..9 evenly; band topics are named next to the type', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((p) => priorityBand(p, 2))).toEqual([
      0, 0, 0, 0, 0, 1, 1, 1, 1, 1,
    ]);
    expect([0, 3, 9].map((p) => priorityBand(p, 10))).toEqual([0, 3, 9]);
    expect(priorityBand(undefined, 10)).toBe(0);
    expect(priorityTopic('orders', 3)).toBe('orders.p3');
    const long = priorityTopic('t'.repeat(249), 9);
    expect(long.length).toBeLessThanOrEqual(249);
    expect(long).not.toBe(priorityTopic('t'.repeat(248), 9));
  });
});

describe('priority on kafka (kafkajs)', () => {
  let broker: BrokerHandle | undefined;
  const managers: QueueManager[] = [];
  const gates: (() => void)[] = [];
  beforeAll(async () => {
    broker = await kafkaBroker();
  }, 180_000);
  afterEach(async () => {
    for (const open of gates.splice(0)) open();
    await Promise.all(managers.splice(0).map((manager) => manager.close()));
  }, 60_000);
  afterAll(() => broker?.stop(), 60_000);

  const open = async (priorityLevels: number): Promise<QueueManager> => {
    const manager = await createQueueManager({
      driver: 'kafka',
      url: broker!.url,
      ...TEST_OPTIONS,
      priorityLevels,
    });
    managers.push(manager);
    return manager;
  };

  /** A concurrency-1 consumer held busy by a 'gate' message; returns what it got and the gate. */
  const gated = async (manager: QueueManager, type: string) => {
    const got: unknown[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    gates.push(release);
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    await manager.consume(
      type,
      async (message) => {
        got.push(message.body);
        if (message.body === 'gate') {
          started();
          await gate;
        }
      },
      { group: uniqueGroup(), concurrency: 1 },
    );
    await manager.publish(type, 'gate');
    await running;
    return { got, release };
  };

  const until = async (check: () => boolean, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!check() && Date.now() < end) await sleep(25);
  };

  test('off: capabilities.priority is false and priority is refused', async () => {
    const manager = await open(0);
    expect(manager.capabilities.priority).toBe(false);
    await expect(manager.publish(uniqueType('prio'), 1, { priority: 5 })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
  });

  test('among waiting messages the higher priority is delivered first', async () => {
    const manager = await open(10);
    expect(manager.capabilities.priority).toBe(true);
    const type = uniqueType('prio');
    const { got, release } = await gated(manager, type);
    for (const priority of [3, 1, 4, 9, 5, 2, 6, 8, 7, 0])
      await manager.publish(type, priority, { priority });
    await sleep(300);
    release();
    await until(() => got.length >= 11, 20_000);
    expect(got).toEqual(['gate', 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  }, 60_000);

  test('a delayed message is moved to its priority band; inspect counts bands in the backlog', async () => {
    const manager = await open(10);
    const type = uniqueType('prio');
    const { got, release } = await gated(manager, type);
    await manager.publish(type, 'low', { priority: 1 });
    await manager.publish(type, 'high-delayed', { priority: 9, delayMs: 300 });
    await manager.publish(type, 'mid', { priority: 5 });
    // Let the mover move it; the gate still holds all three in the bands (or the broker).
    await sleep(2_500);
    const inspection = await manager.inspect({ types: [type] });
    const listed = inspection.groups.map((state) => state.type);
    expect(listed.every((name) => name === type)).toBe(true);
    // The gate itself is not committed yet: it is part of the lag, with the three waiting.
    expect(inspection.groups[0]?.backlog).toBe(4);
    release();
    await until(() => got.length >= 4, 20_000);
    expect(got).toEqual(['gate', 'high-delayed', 'mid', 'low']);
    // Once committed (band topics included), still one type, and nothing left.
    let after = await manager.inspect({ types: [type] });
    for (let tries = 0; tries < 40 && after.groups[0]?.backlog !== 0; tries++) {
      await sleep(250);
      after = await manager.inspect({ types: [type] });
    }
    expect(after.groups.map((state) => [state.type, state.backlog])).toEqual([[type, 0]]);
    const all = await manager.inspect();
    expect(all.groups.filter((state) => state.type.startsWith(`${type}.`))).toEqual([]);
  }, 60_000);
});
