import { ERROR_CODES, type QueueManager } from '@plugmq/core';
import { expect, it } from 'vitest';
import { sleep, uniqueGroup, uniqueType } from '../conformance/helpers.js';
import type { FaultEnv } from './env.js';
import { TcpProxy } from './proxy.js';
import { DeliveryLedger, publishStream } from './stream.js';

// Scenarios 1, 2, 4 and 8: the broker (or the network to it) goes away under a live producer and
// consumer. Every wait is bounded; a scenario records its figures before it asserts, so the table
// shows what was lost even when the assertion fails.

const SETTLE_MS = 120_000;

type Fault = (env: FaultEnv) => Promise<void>;

const restart: Fault = (env) => env.broker.restart();
const killThenRestart: Fault = async (env) => {
  await env.broker.kill();
  await sleep(500);
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
): Promise<DeliveryLedger> {
  const { producer, consumer } = managers;
  const type = uniqueType('fault');
  const ledger = new DeliveryLedger();
  await consumer.consume(type, ledger.handler, { group: uniqueGroup('fault'), concurrency: 16 });
  const marks = faults.map((_, index) => Math.floor((count * (index === 0 ? 0.2 : 0.6)) / 1));
  const backAt: number[] = [];
  let chain = Promise.resolve();
  let fired = 0;
  const started = Date.now();
  await publishStream({
    manager: producer,
    type,
    count,
    ledger,
    at: marks,
    pace: { every: Math.max(1, Math.floor(count / 20)), ms: 50 },
    onIndex: () => {
      const fault = faults[fired++];
      if (!fault) return;
      chain = chain.then(async () => {
        await env.healthy([producer, consumer], 60_000);
        await fault(env);
        backAt.push(Date.now());
      });
    },
  });
  await chain;
  await ledger.settle(SETTLE_MS);
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
    note: ledger.rejected.size > 0 ? `rejected: ${ledger.rejectionCodes().join(',')}` : undefined,
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
  body: () => Promise<void>,
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
      const producer = await env.manager({ publishTimeoutMs: 2_000 });
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
    async () => {
      const target = new URL(env.broker.url);
      const proxy = await TcpProxy.start(target.hostname, Number(target.port));
      try {
        const url = proxy.rewrite(env.broker.url);
        const producer = await env.manager({}, url);
        const consumer = await env.manager({}, url);
        const cut: typeof restart = async () => {
          proxy.interrupt();
          await sleep(2_000);
          proxy.restore();
        };
        const connections = proxy.connections;
        await streamThrough(env, '8 network cut x2', [cut, cut], Math.max(1, Math.floor(n / 5)), {
          producer,
          consumer,
        });
        expect(proxy.connections, 'the clients reconnected through the proxy').toBeGreaterThan(connections);
      } finally {
        await env.cleanup();
        await proxy.close();
      }
    },
    600_000,
  );
}
