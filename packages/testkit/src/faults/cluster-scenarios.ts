import type { Message, QueueManager } from '@plugmq/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterHandle, ClusterNode } from '../clusters/types.js';
import { type Deferred, deferred, uniqueGroup, uniqueType, withTimeout } from '../conformance/helpers.js';
import { FigureBook } from './figures.js';
import { DeliveryLedger, publishStream } from './stream.js';

// The cluster family of the fault suite: the node a stream depends on (its queue's leader, its
// partition's leader, its slot's master) SIGKILLed mid-stream and brought back, or restarted
// cleanly, while a producer and a consumer on the cluster go on. What counts: lost (resolved but
// never delivered: must be 0), duplicates, and how long deliveries stood still.

/** The scenarios of runClusterFaultSuite. */
export type ClusterFaultScenario = 'leaderKill' | 'cleanRestart';

/** The stream a scenario runs: its message type and its consumer group. */
export interface ClusterStreamContext {
  readonly type: string;
  readonly group: string;
}

export interface ClusterFaultSuiteOptions<C extends ClusterHandle = ClusterHandle> {
  /** Shown in test names and the figures table, e.g. 'rabbitmq x3 (quorum)'. */
  readonly name: string;
  /**
   * Called once in the suite's beforeAll (startKafkaCluster, startRabbitmqCluster,
   * startRedisCluster, or any ClusterHandle). Stopped in afterAll unless `sharedCluster`.
   */
  startCluster(): Promise<C>;
  /** The cluster belongs to the test file (started and stopped there): the suite never stops it. */
  readonly sharedCluster?: boolean;
  /** A manager on the cluster (register the driver first); the suite closes it after the scenario. */
  createManager(cluster: C): Promise<QueueManager>;
  /**
   * The node the stream depends on, asked once the consumer has subscribed: the leader of its
   * group queue, of one of its partitions, the master of its stream's slot.
   */
  killTarget(cluster: C, stream: ClusterStreamContext): Promise<ClusterNode>;
  /** Before the managers open, e.g. creating the type's topics with replication 3. */
  prepare?(cluster: C, stream: ClusterStreamContext): Promise<void>;
  /**
   * Resolves once the cluster is whole again (every node was started by the suite already), e.g.
   * `cluster.waitUntilInSync()` or `cluster.waitUntilOk()`. Before each scenario and after it.
   */
  whole?(cluster: C): Promise<void>;
  /** When a scenario lost messages: what the broker's own client finds of them (e.g. in the log). */
  inspectLost?(cluster: C, type: string, ids: readonly string[]): Promise<string>;
  /** Messages per scenario (default FAULT_STREAM or 10 000). */
  readonly streamSize?: number;
  /** Publishes in flight at once (default 200). */
  readonly inFlight?: number;
  /** Each publish's deadline, as its AbortSignal (default 10 000 ms). */
  readonly publishTimeoutMs?: number;
  /** The consumer's concurrency (default 16). */
  readonly concurrency?: number;
  /** The bound on one scenario, fault, recovery and settling included (default 300 000 ms). */
  readonly scenarioTimeoutMs?: number;
  /** Scenarios that do not apply, with the reason (it goes into the skipped test's name). */
  readonly skip?: Partial<Record<ClusterFaultScenario, string>>;
}

/** Stops waiting for lost messages after this long without a delivery, or this long at most. */
const QUIET_MS = 15_000;
const SETTLE_MS = 120_000;

function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Longest time between consecutive `times` from `from` to `to` (ms). */
function longestPause(times: readonly number[], from: number, to: number): number {
  let longest = 0;
  let previous = from;
  for (const at of times) {
    if (at < from) continue;
    if (at > to) break;
    longest = Math.max(longest, at - previous);
    previous = at;
  }
  return Math.max(longest, to - previous);
}

/**
 * A fault in steps, each fired at a fraction of the stream. A step calls `down()` once its fault
 * is in effect (the node dead or stopped; a start: once it is back): publishes from the step's
 * mark plus a hold on wait for that, so the stream is still running (a full window in flight)
 * when the fault lands, however fast the driver, and goes on while the node comes back.
 */
interface Step {
  readonly at: number;
  run(node: ClusterNode, marks: { faultAt(): void; down(): void }): Promise<void>;
}

const STEPS: Record<ClusterFaultScenario, { title: string; steps: readonly Step[] }> = {
  leaderKill: {
    title: 'the node the stream depends on SIGKILLed at 20 %, started again at 60 %',
    steps: [
      {
        at: 0.2,
        async run(node, marks) {
          marks.faultAt();
          await node.kill();
        },
      },
      {
        at: 0.6,
        // The stream goes on while the node starts and rejoins: holding it would show the
        // start-up time as a delivery pause.
        async run(node, marks) {
          marks.down();
          await node.start();
        },
      },
    ],
  },
  cleanRestart: {
    title: 'the node the stream depends on restarted cleanly at 20 %',
    steps: [
      {
        at: 0.2,
        async run(node, marks) {
          marks.faultAt();
          await node.stop();
          marks.down();
          await node.start();
        },
      },
    ],
  },
};

class ClusterFaultEnv<C extends ClusterHandle> {
  readonly figures = new FigureBook();
  readonly streamSize: number;
  private handle: C | undefined;
  private readonly managers = new Set<QueueManager>();

  constructor(readonly options: ClusterFaultSuiteOptions<C>) {
    this.streamSize = options.streamSize ?? envNumber('FAULT_STREAM', 10_000);
  }

  get cluster(): C {
    if (!this.handle) throw new Error(`${this.options.name}: no cluster (see the beforeAll error)`);
    return this.handle;
  }

  async setup(): Promise<void> {
    this.handle = await this.options.startCluster();
  }

  async manager(): Promise<QueueManager> {
    const manager = await this.options.createManager(this.cluster);
    this.managers.add(manager);
    return manager;
  }

  /** Every node running and the cluster whole: each scenario starts from there. */
  async heal(): Promise<void> {
    if (!this.handle) return;
    for (const node of this.handle.nodes) if (!node.running) await node.start();
    await this.options.whole?.(this.handle);
  }

  async cleanup(): Promise<void> {
    const open = [...this.managers];
    this.managers.clear();
    await Promise.allSettled(open.map((m) => withTimeout(m.close(), 60_000, 'manager.close()')));
    await this.heal();
  }

  async teardown(): Promise<void> {
    await this.cleanup().catch(() => undefined);
    this.figures.print(`plugmq cluster fault figures: ${this.options.name}`);
    if (!this.options.sharedCluster) await this.handle?.stop();
  }
}

async function runScenario<C extends ClusterHandle>(
  env: ClusterFaultEnv<C>,
  scenario: ClusterFaultScenario,
): Promise<void> {
  const { options } = env;
  const { steps } = STEPS[scenario];
  const count = env.streamSize;
  await env.heal();
  const stream: ClusterStreamContext = { type: uniqueType('cluster'), group: uniqueGroup('cluster') };
  await options.prepare?.(env.cluster, stream);
  const producer = await env.manager();
  const consumer = await env.manager();
  const ledger = new DeliveryLedger();
  const hold = Math.min(400, Math.floor(count / 10));
  const marks = steps.map((step) => Math.floor(count * step.at));
  // Publishes from here on started after the fault landed: their first delivery is the recovery.
  const afterFault = (marks[0] ?? 0) + hold;
  let faultAt = 0;
  let resumedAt = 0;
  await consumer.consume(
    stream.type,
    (message: Message<unknown>) => {
      ledger.handler(message);
      if (!resumedAt && faultAt && (message.body as number) >= afterFault) resumedAt = Date.now();
    },
    { group: stream.group, concurrency: options.concurrency ?? 16 },
  );
  const node = await options.killTarget(env.cluster, stream);
  const started = Date.now();
  // Settled once step k's fault is in effect (released by `down()`, else when the step ends).
  const done: Deferred[] = steps.map(() => deferred());
  let chain = Promise.resolve();
  let fired = 0;
  await publishStream({
    manager: producer,
    type: stream.type,
    count,
    ledger,
    concurrency: options.inFlight ?? 200,
    timeoutMs: options.publishTimeoutMs ?? 10_000,
    at: marks,
    gate: (index) => {
      const pending = marks.findIndex((mark, k) => index >= mark + hold && !done[k]?.settled);
      return pending < 0 ? undefined : done[pending]?.promise;
    },
    onIndex: () => {
      const k = fired++;
      const step = steps[k];
      chain = chain.then(async () => {
        await step?.run(node, {
          faultAt: () => {
            faultAt = Date.now();
          },
          down: () => done[k]?.resolve(),
        });
        done[k]?.resolve();
      });
      // A failed step must not hold the gated publishes forever; the rejection reaches the test.
      chain.catch(() => done[k]?.resolve());
    },
  });
  const publishedAt = Date.now();
  await chain;
  await options.whole?.(env.cluster);
  await ledger.settleQuietly(QUIET_MS, SETTLE_MS);
  const lost = ledger.lost();
  let inspected: string | undefined;
  if (lost.length > 0 && options.inspectLost) {
    inspected = await options
      .inspectLost(env.cluster, stream.type, lost)
      .catch((error) => `inspection failed: ${error}`);
  }
  env.figures.add({
    driver: options.name,
    scenario: `${scenario === 'leaderKill' ? 'leader SIGKILL + start' : 'clean restart'} (${node.name})`,
    messages: count,
    resolved: ledger.resolved.size,
    rejected: ledger.rejected.size,
    lost: lost.length,
    duplicates: ledger.duplicates(),
    recoveryMs: resumedAt ? resumedAt - faultAt : undefined,
    wallMs: Date.now() - started,
    note:
      [
        `longest delivery pause from the fault to the stream's end ${longestPause(ledger.arrivals, faultAt, publishedAt)} ms`,
        ledger.rejected.size > 0 ? `rejected: ${ledger.rejectionCodes().join(',')}` : '',
        inspected ?? '',
      ]
        .filter(Boolean)
        .join('; ') || undefined,
  });
  expect(fired, 'fault steps fired').toBe(steps.length);
  expect(ledger.resolved.size + ledger.rejected.size).toBe(count);
  expect(lost.slice(0, 10), `${lost.length} resolved publishes never delivered`).toEqual([]);
  expect(resumedAt, 'deliveries resumed after the fault').toBeGreaterThan(0);
}

/**
 * Registers the cluster fault scenarios for one driver on a replicated cluster: the node a stream
 * depends on SIGKILLed mid-stream then started again (`leaderKill`), and the same node restarted
 * cleanly (`cleanRestart`). Each streams `streamSize` publishes (each with a deadline) to a live
 * consumer group, asserts nothing resolved was lost, and adds lost, duplicates and the recovery
 * time (from the fault to the first delivery of a message published after it) to a figures
 * table printed when the suite ends. Call it at the top level of a test file:
 *
 *   runClusterFaultSuite({
 *     name: 'redis x6',
 *     startCluster: () => startRedisCluster({ replicasPerMaster: 1 }),
 *     createManager: (cluster) => createQueueManager({ driver: 'redis', url: cluster.url, cluster: true }),
 *     killTarget: (cluster, { type }) => cluster.masterOf(`plugmq:${type}`),
 *     whole: (cluster) => cluster.waitUntilOk(),
 *   });
 */
export function runClusterFaultSuite<C extends ClusterHandle>(options: ClusterFaultSuiteOptions<C>): void {
  const env = new ClusterFaultEnv(options);
  const timeout = options.scenarioTimeoutMs ?? 300_000;
  describe(`plugmq cluster faults: ${options.name}`, () => {
    beforeAll(() => env.setup(), 240_000);
    afterEach(() => env.cleanup(), 240_000);
    afterAll(() => env.teardown(), 120_000);
    for (const scenario of ['leaderKill', 'cleanRestart'] as const) {
      const reason = options.skip?.[scenario];
      const title = `${STEPS[scenario].title}: nothing resolved is lost`;
      if (reason) it.skip(`${title} [skipped: ${reason}]`, () => {});
      else it(title, () => runScenario(env, scenario), timeout);
    }
  });
}
