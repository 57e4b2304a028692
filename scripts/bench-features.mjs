// The features scenario of `pnpm bench`: what a publish option costs beside the plain path, on the
// same driver in the same run. Each feature the driver declares (delay, priority, orderedByKey, and
// retention for replay where it is an option) runs against a plain side: both publish the same
// messages (WINDOW in flight) to a live consumer at the given concurrency, and the clock runs from
// the first publish to the last message handled.
// CPU per message (process.cpuUsage) covers publisher and consumer together: they share the process.
// The delay side's clock leaves out the delay itself (DELAY_MS), so its figure is the path's cost.
import { createQueueManager } from '@plugmq/core';
import { alternatingRounds, pipelined, round, withDeadline } from './bench-lib.mjs';

const WINDOW = 256;
const TIMEOUT_MS = 300_000;
/** Short enough to keep a round brief, long enough that every message really waits. */
export const DELAY_MS = 50;
const KEYS = 64;

/**
 * A feature: the capability it needs, the options of message `i`, and what the driver needs in
 * its config to declare it (a driver module's `featureConfig[name]`, e.g. rabbitmq's partitions).
 */
const FEATURES = {
  // The wait itself is not the path's cost: its DELAY_MS come off the delay side's clock.
  delay: { capability: 'delay', options: () => ({ delayMs: DELAY_MS }), waitMs: DELAY_MS },
  priority: { capability: 'priority', options: (i) => ({ priority: i % 10 }), waitMs: 0 },
  ordered: { capability: 'orderedByKey', options: (i) => ({ key: `k${i % KEYS}` }), waitMs: 0 },
  // Plain publishes on a config that keeps every message for groups to come: only where that is
  // an option the driver module names (featureConfig.replay), since elsewhere it costs nothing.
  replay: { capability: 'newGroupReceivesOldMessages', options: () => undefined, waitMs: 0, optIn: true },
};

async function runSide(target, { messages, concurrency, options, waitMs = 0 }) {
  const manager = await createQueueManager(target.config);
  const group = `bench-feature-${Date.now().toString(36)}`;
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  await manager.consume(
    target.type,
    async () => {
      if (++handled >= messages) finish();
    },
    { group, concurrency },
  );
  const body = { payload: 'x'.repeat(240) };
  const cpu = process.cpuUsage();
  const started = performance.now();
  const limit = withDeadline(TIMEOUT_MS, 'a features side');
  let sent = 0;
  try {
    await Promise.race([
      (async () => {
        await pipelined(WINDOW, messages, () => manager.publish(target.type, body, options(sent++)));
        await done;
      })(),
      limit.promise,
    ]);
  } finally {
    limit.cancel();
  }
  const seconds = (performance.now() - started - waitMs) / 1000;
  const used = process.cpuUsage(cpu);
  await manager.close();
  await target.drop(group);
  return { msgsPerSec: handled / seconds, cpuUsPerMsg: (used.user + used.system) / handled };
}

/** Whether a manager with `config` declares `capability` (a feature the driver lacks is skipped). */
async function declares(config, capability) {
  const manager = await createQueueManager(config);
  try {
    return manager.capabilities[capability] === true;
  } finally {
    await manager.close();
  }
}

/**
 * Rounds of feature vs plain for each declared feature at each concurrency level (the side that
 * goes first alternates); the round with the median ratio is reported with the spread.
 * `makeTarget()` is the driver module's batchTarget: a fresh config, type and clean-up per side.
 */
export async function runFeaturesScenario(
  makeTarget,
  { driver, messages, rounds, levels, featureConfig = {} },
) {
  const rows = [];
  for (const [name, feature] of Object.entries(FEATURES)) {
    if (feature.optIn && !featureConfig[name]) continue;
    const withFeature = async () => {
      const target = await makeTarget();
      return { ...target, config: { ...target.config, ...featureConfig[name] } };
    };
    const probe = await withFeature();
    const supported = await declares(probe.config, feature.capability);
    await probe.drop();
    if (!supported) {
      process.stderr.write(
        `${driver} features: ${name} skipped (capabilities.${feature.capability} is false)\n`,
      );
      continue;
    }
    for (const concurrency of levels) {
      const { median, ...ratios } = await alternatingRounds(rounds, ['feature', 'plain'], async (side) =>
        side === 'feature'
          ? runSide(await withFeature(), { messages, concurrency, ...feature })
          : runSide(await makeTarget(), { messages, concurrency, options: () => undefined }),
      );
      rows.push({
        driver,
        scenario: `${name}-vs-plain-c${concurrency}`,
        messages,
        rounds,
        ...(name === 'delay' ? { delayMs: DELAY_MS } : {}),
        featureMsgsPerSec: Math.round(median.feature.msgsPerSec),
        plainMsgsPerSec: Math.round(median.plain.msgsPerSec),
        ...ratios,
        featureCpuUsPerMsg: round(median.feature.cpuUsPerMsg, 1),
        plainCpuUsPerMsg: round(median.plain.cpuUsPerMsg, 1),
      });
    }
  }
  return rows;
}
