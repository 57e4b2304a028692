// The inspect-overhead scenario of `pnpm bench`: the plain publish → consume path with and
// without `queue.inspect()` polled on the same manager every `inspectEveryMs` (2 s by default, the
// dashboard's and the metrics gauges' default), on the same driver in the same run. The side that
// goes first alternates; the round with the median ratio is reported with the spread. The
// polled side also reports how long each inspect() took, the part of the cost the ratio hides
// when a run is short: cost ≈ inspect time / interval on a busy event loop.
import { createQueueManager } from '@plugmq/core';
import { makeBody, round, withDeadline } from './bench-lib.mjs';

const WINDOW = 64;
const TIMEOUT_MS = 60_000;
/** Publishers pause above this backlog, so a side measures the path, not a growing queue. */
const HIGH = 4096;
const LOW = 1024;

/**
 * One side: publishes for `seconds` (keeping at most HIGH messages unhandled) and counts what the
 * consumer handled in that time. A fixed duration, not a message count, so the polled side sees
 * seconds / interval inspections whatever the driver's speed.
 */
async function runSide(target, { seconds, concurrency, inspectEveryMs }) {
  const manager = await createQueueManager(target.config);
  const group = `bench-inspect-${inspectEveryMs ? 'on' : 'off'}-${Date.now().toString(36)}`;
  let handled = 0;
  let published = 0;
  let waiting = [];
  await manager.consume(
    target.type,
    () => {
      handled++;
      if (waiting.length > 0 && published - handled < LOW) {
        const release = waiting;
        waiting = [];
        for (const resolve of release) resolve();
      }
    },
    { group, concurrency },
  );
  const inspections = [];
  let timer;
  if (inspectEveryMs) {
    timer = setInterval(async () => {
      const started = performance.now();
      await manager.inspect({ types: [target.type] });
      inspections.push(performance.now() - started);
    }, inspectEveryMs);
  }
  const body = makeBody();
  const started = performance.now();
  const end = started + seconds * 1000;
  let handledAtEnd = 0;
  const limit = withDeadline(
    seconds * 1000 + TIMEOUT_MS,
    `the ${inspectEveryMs ? 'inspected' : 'plain'} side`,
  );
  const lane = async () => {
    for (let sent = 1; performance.now() < end; sent++) {
      if (published - handled >= HIGH) await new Promise((resolve) => waiting.push(resolve));
      published++;
      await manager.publish(target.type, body);
      // The memory driver settles everything in microtasks: without a turn of the event loop now
      // and then, no timer (the inspect poll included) would ever run.
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  try {
    await Promise.race([
      (async () => {
        const stop = new Promise((resolve) => setTimeout(resolve, seconds * 1000)).then(() => {
          handledAtEnd = handled;
        });
        await Promise.all([stop, ...Array.from({ length: WINDOW }, lane)]);
      })(),
      limit.promise,
    ]);
  } finally {
    limit.cancel();
    clearInterval(timer);
  }
  const elapsed = (performance.now() - started) / 1000;
  await manager.close();
  await target.drop(group);
  const inspectMs = inspections.length ? inspections.reduce((a, b) => a + b, 0) / inspections.length : 0;
  return {
    msgsPerSec: handledAtEnd / Math.min(elapsed, seconds),
    seconds,
    inspections: inspections.length,
    inspectMs,
  };
}

export async function runInspectScenario(makeTarget, { driver, seconds, rounds, levels, inspectEveryMs }) {
  const rows = [];
  for (const concurrency of levels) {
    const results = [];
    // A discarded pass warms the JIT and the broker before the first measured round.
    await runSide(makeTarget(), { seconds: 1, concurrency, inspectEveryMs: 0 });
    for (let r = 0; r < rounds; r++) {
      const sides = {};
      for (const polled of r % 2 === 0 ? [true, false] : [false, true]) {
        sides[polled ? 'on' : 'off'] = await runSide(makeTarget(), {
          seconds,
          concurrency,
          inspectEveryMs: polled ? inspectEveryMs : 0,
        });
      }
      results.push(sides);
    }
    const ratio = (sides) => sides.on.msgsPerSec / sides.off.msgsPerSec;
    results.sort((a, b) => ratio(a) - ratio(b));
    const median = results[Math.floor(results.length / 2)];
    const inspectMs = results.reduce((sum, s) => sum + s.on.inspectMs, 0) / results.length;
    rows.push({
      driver,
      scenario: `inspect-every-${inspectEveryMs}ms-c${concurrency}`,
      secondsPerSide: seconds,
      rounds,
      plainMsgsPerSec: Math.round(median.off.msgsPerSec),
      inspectedMsgsPerSec: Math.round(median.on.msgsPerSec),
      ratio: round(ratio(median)),
      ratioMin: round(ratio(results[0])),
      ratioMax: round(ratio(results[results.length - 1])),
      inspectionsPerSide: median.on.inspections,
      meanInspectMs: round(inspectMs, 2),
      // The share of one event loop inspect() could take at this interval, measured apart from the ratio.
      inspectSharePct: round((100 * inspectMs) / inspectEveryMs, 3),
    });
  }
  return rows;
}
