// The batch scenario of `pnpm bench`: the same simulated bulk insert done by a batch handler
// (consumeBatch) and by a one-message handler (consume), on the same driver in the same run. An
// insert costs a fixed round trip per call (CALL_MS, waited, not CPU) plus CPU per row (ROW_US,
// spun), as a database round trip plus row encoding does. Both sides publish the same messages
// with publishBatch after the subscription is live; the clock runs from the first publish to the
// last message handled. CPU per message (process.cpuUsage, publisher and consumer together: they
// share the process) includes the simulated rows on both sides.
import { createQueueManager } from '@plugmq/core';
import { alternatingRounds, round, withDeadline } from './bench-lib.mjs';

export const CALL_MS = 2;
export const ROW_US = 20;
const PUBLISH_CHUNK = 500;
const TIMEOUT_MS = 300_000;

function spin(us) {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) {
    // CPU a row costs to encode: deliberately busy.
  }
}

/** The simulated bulk insert: one round trip for the call, CPU for each row. */
async function insert(rows) {
  spin(rows * ROW_US);
  await new Promise((resolve) => setTimeout(resolve, CALL_MS));
}

/**
 * One side: `mode` 'batch' (consumeBatch with maxBatchSize) or 'single' (consume at `concurrency`).
 * `target` comes from the driver's bench module (`batchTarget(url)`): config, type and clean-up.
 */
export async function runSide(target, { mode, messages, concurrency, maxBatchSize, maxWaitMs }) {
  const manager = await createQueueManager(target.config);
  const group = `bench-batch-${mode}-${Date.now().toString(36)}`;
  let handled = 0;
  let calls = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const count = (n) => {
    handled += n;
    calls++;
    if (handled >= messages) finish();
  };
  if (mode === 'batch') {
    await manager.consumeBatch(
      target.type,
      async (batch) => {
        await insert(batch.length);
        count(batch.length);
      },
      { group, maxBatchSize, maxWaitMs },
    );
  } else {
    await manager.consume(
      target.type,
      async () => {
        await insert(1);
        count(1);
      },
      { group, concurrency },
    );
  }
  const body = { payload: 'x'.repeat(240) };
  const cpu = process.cpuUsage();
  const started = performance.now();
  const limit = withDeadline(TIMEOUT_MS, `the ${mode} side`);
  try {
    await Promise.race([
      (async () => {
        for (let sent = 0; sent < messages; sent += PUBLISH_CHUNK) {
          const n = Math.min(PUBLISH_CHUNK, messages - sent);
          await manager.publishBatch(Array.from({ length: n }, () => ({ type: target.type, body })));
        }
        await done;
      })(),
      limit.promise,
    ]);
  } finally {
    limit.cancel();
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await manager.close();
  await target.drop(group);
  return {
    msgsPerSec: handled / seconds,
    cpuUsPerMsg: (used.user + used.system) / handled,
    meanBatch: handled / calls,
  };
}

/**
 * Rounds of batch vs single at each concurrency level (the side that goes first alternates); the
 * round with the median ratio is reported with the spread of the ratios.
 */
export async function runBatchScenario(
  makeTarget,
  { driver, messages, rounds, levels, maxBatchSize, maxWaitMs },
) {
  const rows = [];
  for (const concurrency of levels) {
    const options = { messages, concurrency, maxBatchSize, maxWaitMs };
    const { median, ...ratios } = await alternatingRounds(rounds, ['batch', 'single'], async (mode) =>
      runSide(await makeTarget(), { ...options, mode }),
    );
    rows.push({
      driver,
      scenario: `batch-${maxBatchSize}-vs-single-c${concurrency}`,
      messages,
      rounds,
      callMs: CALL_MS,
      rowUs: ROW_US,
      batchMsgsPerSec: Math.round(median.batch.msgsPerSec),
      singleMsgsPerSec: Math.round(median.single.msgsPerSec),
      ...ratios,
      meanBatch: round(median.batch.meanBatch, 1),
      batchCpuUsPerMsg: round(median.batch.cpuUsPerMsg, 1),
      singleCpuUsPerMsg: round(median.single.cpuUsPerMsg, 1),
    });
  }
  return rows;
}
