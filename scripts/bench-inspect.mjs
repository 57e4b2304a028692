// The inspect-overhead scenario of `pnpm bench`: the plain publish → consume path with and
// without `queue.inspect()` polled on the same manager every `inspectEveryMs` (2 s by default, the
// dashboard's and the metrics gauges' default). One manager streams messages the whole time;
// polling is switched on and off in segments of two intervals, in ABBA order, so a machine whose
// load drifts (shared CI, other processes) weighs on both sides alike: separate runs per side
// differed by ±40 % on a loaded 2-core machine, which hides a cost of a few percent. The
// polled segments also time each inspect() call: cost ≈ inspect time / interval.
import { createQueueManager } from '@plugmq/core';
import { makeBody, round } from './bench-lib.mjs';

const LANES = 64;
/** Publishers pause above this backlog, so a segment measures the path, not a growing queue. */
const HIGH = 4096;
const LOW = 1024;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One concurrency level: `seconds` of polled and `seconds` of plain segments, interleaved. */
async function runLevel(target, { seconds, concurrency, inspectEveryMs }) {
  const manager = await createQueueManager(target.config);
  const group = `bench-inspect-${Date.now().toString(36)}`;
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
  const body = makeBody();
  let running = true;
  const lane = async () => {
    for (let sent = 1; running; sent++) {
      if (published - handled >= HIGH) await new Promise((resolve) => waiting.push(resolve));
      published++;
      await manager.publish(target.type, body);
      // The memory driver settles everything in microtasks: without a turn of the event loop now
      // and then, no timer (the inspect poll and the segment clock included) would ever run.
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const lanes = Array.from({ length: LANES }, lane);

  const inspections = [];
  const poll = async () => {
    const started = performance.now();
    await manager.inspect({ types: [target.type] });
    inspections.push(performance.now() - started);
  };
  const segmentMs = Math.max(1000, 2 * inspectEveryMs);
  const pairs = Math.max(2, Math.ceil((seconds * 1000) / segmentMs));
  const totals = { on: { handled: 0, ms: 0 }, off: { handled: 0, ms: 0 } };
  const pairRatios = [];
  await sleep(1000); // warm-up, discarded
  for (let p = 0; p < pairs; p++) {
    const rates = {};
    for (const polled of p % 2 === 0 ? [true, false] : [false, true]) {
      const side = polled ? 'on' : 'off';
      const before = handled;
      const started = performance.now();
      let timer;
      if (polled) {
        void poll();
        timer = setInterval(() => void poll(), inspectEveryMs);
      }
      await sleep(segmentMs);
      clearInterval(timer);
      const ms = performance.now() - started;
      totals[side].handled += handled - before;
      totals[side].ms += ms;
      rates[side] = (handled - before) / ms;
    }
    pairRatios.push(rates.on / rates.off);
  }
  running = false;
  for (const release of waiting) release();
  await Promise.all(lanes);
  await manager.close();
  await target.drop(group);
  pairRatios.sort((a, b) => a - b);
  const rate = (side) => (1000 * totals[side].handled) / totals[side].ms;
  const inspectMs = inspections.reduce((a, b) => a + b, 0) / Math.max(1, inspections.length);
  return {
    plainMsgsPerSec: rate('off'),
    inspectedMsgsPerSec: rate('on'),
    pairs,
    pairRatioMedian: pairRatios[Math.floor(pairRatios.length / 2)],
    pairRatioMin: pairRatios[0],
    pairRatioMax: pairRatios[pairRatios.length - 1],
    inspections: inspections.length,
    inspectMs,
  };
}

export async function runInspectScenario(makeTarget, { driver, seconds, levels, inspectEveryMs }) {
  const rows = [];
  for (const concurrency of levels) {
    const r = await runLevel(makeTarget(), { seconds, concurrency, inspectEveryMs });
    rows.push({
      driver,
      scenario: `inspect-every-${inspectEveryMs}ms-c${concurrency}`,
      secondsPerSide: round((r.pairs * Math.max(1000, 2 * inspectEveryMs)) / 1000, 1),
      pairs: r.pairs,
      plainMsgsPerSec: Math.round(r.plainMsgsPerSec),
      inspectedMsgsPerSec: Math.round(r.inspectedMsgsPerSec),
      ratio: round(r.inspectedMsgsPerSec / r.plainMsgsPerSec),
      pairRatioMedian: round(r.pairRatioMedian),
      ratioMin: round(r.pairRatioMin),
      ratioMax: round(r.pairRatioMax),
      inspections: r.inspections,
      meanInspectMs: round(r.inspectMs, 2),
      // The share of one event loop inspect() takes at this interval, measured apart from the ratio.
      inspectSharePct: round((100 * r.inspectMs) / inspectEveryMs, 3),
    });
  }
  return rows;
}
