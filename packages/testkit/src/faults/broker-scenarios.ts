import { connect } from 'node:net';
import { ERROR_CODES, type QueueManager } from '@plugmq/core';
import { expect, it, type TestContext } from 'vitest';
import { proxyRoute } from '../brokers/proxy-route.js';
import { brokersRequired } from '../brokers/start.js';
import { deferred, sleep, uniqueGroup, uniqueType } from '../conformance/helpers.js';
import type { FaultEnv } from './env.js';
import { TcpProxy } from './proxy.js';
import { DeliveryLedger, publishStream, type StreamOptions } from './stream.js';

// Scenarios 1, 2, 4 and 8: the broker (or the network to it) goes away under a live producer and
// consumer. Every wait is bounded; a scenario records its figures before it asserts, so the table
// shows what was lost even when the assertion fails.

const SETTLE_MS = 120_000;

/**
 * A fault: breaks something, calls `down()` once the outage is in effect (so the stream can be
 * held until then and really run through it), and resolves once the service is back.
 */
type Fault = (env: FaultEnv, down: () => void) => Promise<void>;

/** Resolves once nothing accepts connections on `url`'s port, or when `until` settles. */
async function whenRefused(url: string, until: Promise<unknown>): Promise<void> {
  const { hostname, port } = new URL(url);
  let over = false;
  void until.finally(() => {
    over = true;
  });
  while (!over) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: hostname, port: Number(port) });
      const done = (result: boolean) => {
        socket.destroy();
        resolve(result);
      };
      socket.once('connect', () => done(true)).once('error', () => done(false));
      socket.setTimeout(500, () => done(false));
    });
    if (!open) return;
    await sleep(20);
  }
}

/** Scenario 4's publish deadline. */
const PUBLISH_DOWN_TIMEOUT_MS = 2_000;

const restart: Fault = async (env, down) => {
  const restarting = env.broker.restart();
  await whenRefused(env.broker.url, restarting);
  down();
  await restarting;
};
const killThenRestart: Fault = async (env, down) => {
  await env.broker.kill();
  down();
  // Publishes keep arriving at a dead broker for a while before it comes back.
  await sleep(1_000);
  await env.broker.restart();
};

/**
 * A stream of `count` publishes (200 in flight) to a live consumer, with `faults` applied one
 * after the other at 20 % / 60 % of the stream, each only once both managers are connected again
 * (so each fault cuts live connections). Returns after every resolved publish arrived or the
 * bounded wait ran out, having recorded the figures.
 */
async function streamThrough(
  env: FaultEnv,
  scenario: string,
  faults: readonly Fault[],
  count: number,
  managers: { producer: QueueManager; consumer: QueueManager },
  features?: StreamOptions['features'],
): Promise<DeliveryLedger> {
  const { producer, consumer } = managers;
  const type = uniqueType('fault');
  const ledger = new DeliveryLedger();
  await consumer.consume(type, ledger.handler, { group: uniqueGroup('fault'), concurrency: 16 });
  const marks = faults.map((_, index) => Math.floor(count * (index === 0 ? 0.2 : 0.6)));
  const backAt: number[] = [];
  // Publishes from HOLD past a fault's mark wait until that fault is in effect: however fast the
  // driver, the stream is still running (with a full window in flight) when the broker goes.
  const HOLD = 400;
  const downs = faults.map(() => deferred());
  let chain = Promise.resolve();
  let fired = 0;
  const started = Date.now();
  await publishStream({
    manager: producer,
    type,
    count,
    ledger,
    at: marks,
    ...(features ? { features } : {}),
    gate: (index) => {
      const pending = marks.findIndex((mark, k) => index >= mark + HOLD && !downs[k]?.settled);
      return pending < 0 ? undefined : downs[pending]?.promise;
    },
    onIndex: () => {
      const k = fired++;
      const fault = faults[k];
      const down = downs[k];
      if (!fault || !down) return;
      chain = chain.then(async () => {
        await env.healthy([producer, consumer], 60_000);
        await fault(env, () => down.resolve());
        down.resolve();
        backAt.push(Date.now());
      });
    },
  });
  await chain;
  await ledger.settle(SETTLE_MS);
  const lost = ledger.lost();
  let inspected: string | undefined;
  if (lost.length > 0 && env.options.inspectLost && env.url) {
    inspected = await env.options
      .inspectLost(env.url, type, lost)
      .catch((error) => `inspection failed: ${error}`);
    console.log(
      `[faults] ${env.options.name} ${scenario}: lost ids ${lost.slice(0, 10).join(' ')}...; ${inspected}`,
    );
  }
  const recoveries = backAt.map((at) => (ledger.firstDeliveryAfter(at) ?? Number.NaN) - at);
  env.figures.add({
    driver: env.options.name,
    scenario,
    messages: count,
    resolved: ledger.resolved.size,
    rejected: ledger.rejected.size,
    lost: ledger.lost().length,
    duplicates: ledger.duplicates(),
    recoveryMs: recoveries.length > 0 ? Math.max(...recoveries) : undefined,
    wallMs: Date.now() - started,
    note:
      [ledger.rejected.size > 0 ? `rejected: ${ledger.rejectionCodes().join(',')}` : '', inspected ?? '']
        .filter(Boolean)
        .join('; ') || undefined,
  });
  expect(backAt, 'faults applied').toHaveLength(faults.length);
  expect(ledger.resolved.size + ledger.rejected.size).toBe(count);
  expect(ledger.lost(), 'resolved publishes never delivered').toEqual([]);
  expect((await consumer.health()).ok, 'consumer healthy after the faults').toBe(true);
  return ledger;
}

function faultIt(
  env: FaultEnv,
  scenario: Parameters<FaultEnv['skipReason']>[0],
  title: string,
  body: (context: TestContext) => Promise<void>,
  timeoutMs: number,
): void {
  const reason = env.skipReason(scenario, true);
  if (reason) it.skip(`${title} [does not apply: ${reason}]`, body);
  else it(title, body, timeoutMs);
}

export function brokerScenarios(env: FaultEnv): void {
  const n = env.streamSize;
  faultIt(
    env,
    'restart',
    `1. broker restarted twice during a ${n}-message stream: every resolved publish delivered, duplicates counted`,
    async () => {
      const producer = await env.manager();
      const consumer = await env.manager();
      await streamThrough(env, '1 restart x2', [restart, restart], n, { producer, consumer });
    },
    600_000,
  );

  faultIt(
    env,
    'restart',
    `1b. broker restarted during a ${n}-message stream of delayed and prioritised messages (what the driver declares): every resolved publish delivered`,
    async (context) => {
      const producer = await env.manager();
      const consumer = await env.manager();
      const { delay, priority } = producer.capabilities;
      if (!delay && !priority) return context.skip('the driver declares neither delay nor priority');
      // A third of the stream waits 0.2–0.8 s, so delayed messages fall due while the broker is down.
      await streamThrough(
        env,
        '1b restart, delayed+prioritised',
        [restart],
        n,
        { producer, consumer },
        (index) => ({
          ...(delay && index % 3 === 0 ? { delayMs: 200 + (index % 7) * 100 } : {}),
          ...(priority ? { priority: index % 10 } : {}),
        }),
      );
    },
    600_000,
  );

  faultIt(
    env,
    'kill',
    `2. broker SIGKILLed once and restarted during a ${n}-message stream: every resolved publish delivered`,
    async () => {
      const producer = await env.manager();
      const consumer = await env.manager();
      await streamThrough(env, '2 SIGKILL x1', [killThenRestart], n, { producer, consumer });
    },
    600_000,
  );

  faultIt(
    env,
    'outage',
    '4. publishing while the broker is down: each publish rejects with a PlugmqError or is delivered later; the same manager works after',
    async () => {
      const producer = await env.manager({ publishTimeoutMs: PUBLISH_DOWN_TIMEOUT_MS });
      const consumer = await env.manager();
      const type = uniqueType('outage');
      const ledger = new DeliveryLedger();
      await consumer.consume(type, ledger.handler, { group: uniqueGroup('outage'), concurrency: 4 });
      await env.broker.kill();
      const during = 20;
      const downAt = Date.now();
      await publishStream({ manager: producer, type, count: during, ledger, concurrency: during });
      const outcomesMs = Date.now() - downAt;
      await env.broker.restart();
      const backAt = Date.now();
      // The same managers, not recreated: a publish after the outage resolves and arrives.
      const after = `${type}:after`;
      let afterResolvedAt = 0;
      for (const deadline = Date.now() + 60_000; afterResolvedAt === 0 && Date.now() < deadline; ) {
        try {
          await producer.publish(type, 'after', { id: after });
          ledger.resolved.add(after);
          afterResolvedAt = Date.now();
        } catch {
          await sleep(200);
        }
      }
      await ledger.settle(60_000);
      env.figures.add({
        driver: env.options.name,
        scenario: '4 publish while down',
        messages: during,
        resolved: ledger.resolved.size - (afterResolvedAt ? 1 : 0),
        rejected: ledger.rejected.size,
        lost: ledger.lost().length,
        duplicates: ledger.duplicates(),
        recoveryMs: afterResolvedAt ? afterResolvedAt - backAt : undefined,
        wallMs: Date.now() - downAt,
        note: `outcomes within ${outcomesMs} ms; rejected: ${ledger.rejectionCodes().join(',') || 'none'}`,
      });
      for (const code of ledger.rejected.values()) expect(ERROR_CODES).toContain(code);
      // The deadline bounds every publish, queued or in flight, whatever the client's own retries
      // do (generous slack for a loaded machine; the figure is in the table).
      expect(outcomesMs, 'every publish settled within publishTimeoutMs (2 s) plus slack').toBeLessThan(
        PUBLISH_DOWN_TIMEOUT_MS + 3_000,
      );
      expect(
        afterResolvedAt,
        'a publish on the same manager resolved after the broker returned',
      ).toBeGreaterThan(0);
      expect(ledger.lost(), 'resolved publishes never delivered').toEqual([]);
    },
    300_000,
  );

  faultIt(
    env,
    'network',
    '8. network interruption (TCP proxy drops and refuses connections, broker untouched): the client recovers without loss',
    async (context) => {
      // Known only once the broker is up: whether a proxy can carry every connection to it.
      const route = proxyRoute(env.broker);
      if (typeof route === 'string') {
        if (brokersRequired()) throw new Error(`8. network interruption cannot run under CI: ${route}`);
        console.warn(`[faults] ${env.options.name} 8 network skipped: ${route}`);
        return context.skip(route);
      }
      const proxy = await TcpProxy.start(route.targetHost, route.targetPort, route.listenPort);
      try {
        const url = proxy.rewrite(env.broker.url);
        const producer = await env.manager({}, url);
        const consumer = await env.manager({}, url);
        const dropped: number[] = [];
        const cut: typeof restart = async () => {
          dropped.push(proxy.interrupt());
          await sleep(2_000);
          proxy.restore();
        };
        const connections = proxy.connections;
        await streamThrough(env, '8 network cut x2', [cut, cut], Math.max(1, Math.floor(n / 5)), {
          producer,
          consumer,
        });
        // Both: a cut that dropped nothing would prove nothing (the clients were not behind it).
        expect(dropped, 'connections dropped by each cut').not.toContain(0);
        expect(proxy.connections, 'the clients reconnected through the proxy').toBeGreaterThan(connections);
      } finally {
        await env.cleanup();
        await proxy.close();
      }
    },
    600_000,
  );
}
