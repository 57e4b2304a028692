// Shared by every driver's bench module: bodies of the agreed size and latency percentiles.

/** A 256-byte JSON body (when serialised) with a `sentAt` field for publish→handler latency. */
export function makeBody() {
  const body = { sentAt: 0, payload: '' };
  const base = JSON.stringify({ ...body, sentAt: performance.now() }).length;
  body.payload = 'x'.repeat(Math.max(0, 256 - base));
  return body;
}

export function latencyStats(latencies, count) {
  if (count === 0) return { p50Ms: Number.NaN, p99Ms: Number.NaN };
  const sorted = Float64Array.from(latencies.subarray(0, count)).sort();
  const at = (q) => sorted[Math.min(count - 1, Math.floor(q * count))];
  return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)) };
}

/**
 * Starts measuring one side of a round: wall time and this process's CPU time (user + system,
 * `process.cpuUsage`). The sides of a round run one after the other, so each side's CPU delta is
 * its own; the broker's CPU is in neither (it runs in another process).
 */
export function startMeter() {
  // With --expose-gc (`pnpm bench` passes it) each side starts on a collected heap, so garbage the
  // previous side left is not collected, and charged, in this side's window.
  globalThis.gc?.();
  const started = performance.now();
  const cpu = process.cpuUsage();
  return {
    stop(handled) {
      const used = process.cpuUsage(cpu);
      const seconds = (performance.now() - started) / 1000;
      return {
        msgsPerSec: handled / seconds,
        cpuUsPerMsg: handled > 0 ? (used.user + used.system) / handled : Number.NaN,
      };
    },
  };
}

export function round(value, digits = 3) {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Waits for `promise`, at most `ms`; a stalled run ends with what it measured. */
export async function withTimeout(promise, ms) {
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `publishOne` `messages` times keeping `window` in flight; resolves when every one did. */
export async function pipelined(window, messages, publishOne) {
  let next = 0;
  const lane = async () => {
    while (next < messages) {
      next++;
      await publishOne();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, messages) }, lane));
}

/** A promise that rejects after `ms` unless cancelled: bounds each phase of a benchmark. */
export function withDeadline(ms, what) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} did not finish within ${ms} ms`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * `rounds` rounds of two sides, `a` and `b` (names), the one going first alternating; each side
 * is `runSide(name)`, resolving to `{ msgsPerSec, … }`. Returns the round with the median a/b
 * throughput ratio, that ratio and the spread of all rounds' ratios.
 */
export async function alternatingRounds(rounds, [a, b], runSide) {
  const results = [];
  for (let r = 0; r < rounds; r++) {
    const sides = {};
    for (const side of r % 2 === 0 ? [a, b] : [b, a]) sides[side] = await runSide(side);
    results.push(sides);
  }
  const ratio = (sides) => sides[a].msgsPerSec / sides[b].msgsPerSec;
  results.sort((x, y) => ratio(x) - ratio(y));
  const median = results[Math.floor(results.length / 2)];
  return {
    median,
    ratio: round(ratio(median)),
    ratioMin: round(ratio(results[0])),
    ratioMax: round(ratio(results[results.length - 1])),
  };
}

/** Messages per side of the discarded warm-up pass that precedes a driver's first round. */
const WARMUP_MESSAGES = 5_000;

/**
 * A driver module's `run(options)`: one round of the adapter and its raw baseline. The first
 * call warms both up (JIT, connection pools, broker caches) with a short discarded pass; then
 * the side that goes first alternates from round to round, so neither always meets a warmer
 * broker or a fuller heap.
 */
export function pairedRounds(runAdapter, runBaseline, defaults = {}) {
  let rounds = 0;
  return async (options) => {
    const resolved = { ...defaults, ...options, url: options.url ?? defaults.url };
    if (rounds === 0) {
      const warmup = {
        ...resolved,
        messages: Math.min(resolved.messages, WARMUP_MESSAGES),
        onProgress: undefined,
      };
      await runBaseline(warmup);
      await runAdapter(warmup);
    }
    const adapterFirst = rounds++ % 2 === 1;
    const adapter = adapterFirst ? await runAdapter(resolved) : undefined;
    const baseline = await runBaseline(resolved);
    return { adapter: adapter ?? (await runAdapter(resolved)), baseline };
  };
}

/**
 * A module of the testkit's broker provisioning, bundled from its source: the testkit's published
 * entry loads vitest, which refuses to run outside a test. Written under the testkit's
 * node_modules so that its own dependencies (testcontainers) resolve.
 */
async function loadTestkitModule(name) {
  const { build } = await import('esbuild');
  const testkit = new URL('../packages/testkit/', import.meta.url);
  const outfile = new URL(`node_modules/.plugmq-bench/${name}.mjs`, testkit);
  await build({
    entryPoints: [new URL(`src/brokers/${name}.ts`, testkit).pathname],
    outfile: outfile.pathname,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
  return import(outfile.href);
}

/** The testkit's startPostgres (PLUGMQ_POSTGRES_URL, else a container, else a local server). */
export async function loadStartPostgres() {
  return (await loadTestkitModule('postgres')).startPostgres;
}

/** The testkit's startBroker (a container, else the local install `pnpm brokers:up` provides). */
export async function loadStartBroker() {
  return (await loadTestkitModule('start')).startBroker;
}

/** Process CPU time (user + system) since `start` (a process.cpuUsage()), in µs per message. */
export function cpuPerMessage(start, messages) {
  const { user, system } = process.cpuUsage(start);
  return round((user + system) / Math.max(1, messages), 1);
}
