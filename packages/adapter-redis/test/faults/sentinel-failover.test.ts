import { createQueueManager, registerDriver } from '@plugmq/core';
import {
  canStartRedisSentinel,
  DeliveryLedger,
  type RedisSentinelNode,
  type RedisSentinelSet,
  recordingLogger,
  skipUnlessCI,
  startRedisSentinel,
} from '@plugmq/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../../src/index.js';
import { type Outcome, publishStream } from './stream-runner.js';

registerDriver(driver);

// A Sentinel-managed Redis (1 master, 2 replicas, 3 Sentinels) loses its master mid-stream
// (SIGKILL); the Sentinels promote a replica after down-after-milliseconds plus an election.
// Publishes caught in that window ride through within their own deadline and the consumer keeps
// going on the new master, without a restart. Replication is asynchronous: writes the master
// answered but had not sent on yet die with it, so without WAIT "lost" may be above 0; the run
// reports it. With waitForReplicas: 1 a publish resolves only once a replica has the write, and
// Sentinel promotes the most advanced replica: nothing resolved may be lost.
const RUNS = Number(process.env.REDIS_SENTINEL_RUNS ?? 1);
const DOWN_AFTER_MS = 1_000;
const COUNT = 5_000;
const IN_FLIGHT = 256;
const DEADLINE_MS = 10_000;
const KILL_AT = 1_500;
const PACE_FROM = KILL_AT - 50;
/** The lanes span about the failover (down-after + election + the clients' reconnect). */
const PACE_MS = Math.ceil((3 * DOWN_AFTER_MS + 3_000) / IN_FLIGHT);

const available = await canStartRedisSentinel();
if (!available && process.env.CI === 'true') {
  throw new Error(
    'redis-server/redis-cli are not installed: cannot start the loopback Redis Sentinel under CI',
  );
}

interface RunFigures {
  readonly lost: number;
  readonly duplicates: number;
  readonly failoverMs: number;
  readonly publishRecoveryMs: number;
  readonly consumeRecoveryMs: number;
  readonly preKillRate: number;
}

const figures: Record<string, RunFigures[]> = { 'without WAIT': [], 'waitForReplicas: 1': [] };

if (available) {
  describe('redis sentinel: the master is SIGKILLed mid-stream, a replica is promoted', () => {
    let set: RedisSentinelSet | undefined;
    beforeAll(async () => {
      set = await startRedisSentinel({ replicas: 2, sentinels: 3, downAfterMs: DOWN_AFTER_MS });
    }, 120_000);
    afterAll(async () => {
      for (const [mode, runs] of Object.entries(figures)) {
        if (runs.length === 0) continue;
        console.log(
          `redis sentinel ${mode}: ${runs.length} run(s); lost ${runs.map((r) => r.lost).join('/')}, ` +
            `duplicates ${runs.map((r) => r.duplicates).join('/')}, failover ms ${runs.map((r) => r.failoverMs).join('/')}, ` +
            `publish recovery ms ${runs.map((r) => r.publishRecoveryMs).join('/')}, ` +
            `consume recovery ms ${runs.map((r) => r.consumeRecoveryMs).join('/')}, ` +
            `publishes/s before the kill ${runs.map((r) => r.preKillRate).join('/')}`,
        );
      }
      await set?.stop();
    });

    const modes = [
      { mode: 'without WAIT', extra: {} },
      { mode: 'waitForReplicas: 1', extra: { waitForReplicas: 1 } },
    ] as const;
    for (let run = 1; run <= RUNS; run++) {
      for (const { mode, extra } of modes) {
        test(`run ${run}, ${mode}: ${COUNT} publishes (${IN_FLIGHT} in flight, ${DEADLINE_MS} ms deadline each), group at concurrency 4`, async () => {
          const s = set as RedisSentinelSet;
          const type = `sentinel.run${run}.${'waitForReplicas' in extra ? 'wait' : 'plain'}`;
          const logger = recordingLogger();
          const manager = await createQueueManager({
            driver: 'redis',
            url: s.url,
            keyPrefix: `sentinel-${process.pid}`,
            logger,
            claimMinIdleMs: 5_000,
            claimIntervalMs: 1_000,
            ...extra,
          });
          const ledger = new DeliveryLedger();
          const outcomes = new Map<string, Outcome>();
          const deliveredAt = new Map<string, number>();
          let killed: RedisSentinelNode | undefined;
          let killedAt = 0;
          let promotedAt = 0;
          let failover: Promise<void> | undefined;
          let recovered = false;
          try {
            await manager.consume(
              type,
              (message) => {
                if (!deliveredAt.has(message.id)) deliveredAt.set(message.id, Date.now());
                ledger.record(message.id);
              },
              { group: 'billing', concurrency: 4 },
            );
            const master = await s.master();
            const startedAt = Date.now();
            await publishStream(
              manager,
              type,
              ledger,
              outcomes,
              {
                count: COUNT,
                inFlight: IN_FLIGHT,
                deadlineMs: DEADLINE_MS,
                killAt: KILL_AT,
                paceFrom: PACE_FROM,
                paceMs: PACE_MS,
              },
              () => {
                killed = master;
                killedAt = Date.now();
                failover = master
                  .kill()
                  .then(() => s.waitForMaster(master, 60_000))
                  .then(() => {
                    promotedAt = Date.now();
                  })
                  .finally(() => {
                    recovered = true;
                  });
              },
              () => recovered,
            );
            await failover;
            await ledger.settle(60_000);

            const all = [...outcomes.entries()];
            const beforeKill = all.filter(([, o]) => o.endedAt > 0 && o.endedAt <= killedAt && !o.code);
            const preKillRate = Math.round((beforeKill.length * 1_000) / Math.max(1, killedAt - startedAt));
            // Publishing is back: the first publish started after the kill that resolved.
            const resumed = all
              .filter(([, o]) => o.startedAt >= killedAt && !o.code)
              .map(([, o]) => o.endedAt)
              .sort((a, b) => a - b)[0];
            // Consuming is back: the first delivery of a message published after the kill.
            const consumed = all
              .filter(([id, o]) => o.startedAt >= killedAt && deliveredAt.has(id))
              .map(([id]) => deliveredAt.get(id) as number)
              .sort((a, b) => a - b)[0];
            const caught = all.filter(([, o]) => o.startedAt <= promotedAt && o.endedAt >= killedAt);
            const early = all.filter(
              ([, o]) => o.code !== undefined && o.endedAt - o.startedAt < DEADLINE_MS - 500,
            );
            // Published once the new master served: the consumer must have had every one of them.
            const lostAfter = ledger
              .lost()
              .filter((id) => (outcomes.get(id) as Outcome).startedAt > promotedAt + 2_000);
            const slowest = Math.max(...all.map(([, o]) => o.endedAt - o.startedAt));
            const warnings = logger.entries.filter((e) => e.level === 'warn' || e.level === 'error');
            const result: RunFigures = {
              lost: ledger.lost().length,
              duplicates: ledger.duplicates(),
              failoverMs: promotedAt - killedAt,
              publishRecoveryMs: resumed === undefined ? -1 : resumed - killedAt,
              consumeRecoveryMs: consumed === undefined ? -1 : consumed - killedAt,
              preKillRate,
            };
            figures[mode]?.push(result);
            console.log(
              `redis sentinel run ${run} (${mode}): killed ${master.name}; promoted after ${result.failoverMs} ms;` +
                ` first publish started after the kill resolved at +${result.publishRecoveryMs} ms,` +
                ` first of them consumed at +${result.consumeRecoveryMs} ms; publishes caught ${caught.length},` +
                ` slowest ${slowest} ms; lost ${result.lost}, duplicates ${result.duplicates},` +
                ` rejected ${ledger.rejected.size} (${ledger.rejectionCodes().join(',') || 'none'}),` +
                ` early rejections ${early.length}; ${preKillRate} publishes/s before the kill;` +
                ` warn/error logs ${warnings.length}` +
                [...new Set(all.flatMap(([, o]) => (o.message ? [o.message] : [])))]
                  .slice(0, 3)
                  .map((m) => `\n  rejected: ${m}`)
                  .join('') +
                warnings
                  .slice(0, 8)
                  .map((e) => `\n  ${e.level}: ${e.message} ${JSON.stringify(e.fields)}`)
                  .join(''),
            );
            expect(caught.length, 'publishes in flight during the failover').toBeGreaterThan(0);
            expect(
              early.map(([id, o]) => `${id}: ${o.code} after ${o.endedAt - o.startedAt} ms`),
              'publishes rejected while their deadline had time',
            ).toEqual([]);
            expect(lostAfter, 'published after the failover, never consumed').toEqual([]);
            expect(result.consumeRecoveryMs, 'the consumer went on after the failover').toBeGreaterThan(0);
            if ('waitForReplicas' in extra) expect(ledger.lost(), 'resolved but never delivered').toEqual([]);
          } finally {
            await manager.close();
            // The killed master comes back as a replica of the promoted one, for the next run.
            if (killed && !killed.running) await killed.start();
            await s.waitUntilSynced();
          }
        }, 120_000);
      }
    }
  });
} else {
  skipUnlessCI(
    'redis sentinel failover',
    'redis-server/redis-cli not installed; pnpm brokers:up redis installs them',
  );
}
