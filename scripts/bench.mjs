#!/usr/bin/env node
// pnpm bench [--driver memory|rabbitmq|redis|kafka] [--json] [--messages N] [--rounds 7] [--url URL]
// pnpm bench --outbox [--driver memory|redis] [--messages N]: outbox relay throughput (PostgreSQL)
// Runs each scenario on the driver and on its raw baseline in the same process, and prints a table
// (or one JSON object per line). Never a test: figures vary between runs on shared machines.
import { parseArgs } from 'node:util';
import { round } from './bench-lib.mjs';

// Each side of a round runs for a few seconds at least: shorter rounds measure start-up and GC
// timing more than the steady state.
const DEFAULT_MESSAGES = { memory: 200_000, rabbitmq: 20_000, redis: 50_000, kafka: 50_000 };

const { values } = parseArgs({
  options: {
    driver: { type: 'string', default: 'memory' },
    json: { type: 'boolean', default: false },
    messages: { type: 'string' },
    url: { type: 'string' },
    concurrency: { type: 'string', default: '1,16' },
    rounds: { type: 'string', default: '7' },
    outbox: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(
    'usage: pnpm bench [--driver memory|rabbitmq|redis|kafka] [--json] [--messages N] [--concurrency 1,16] [--rounds 3] [--url URL] [--outbox]',
  );
  process.exit(0);
}

const driver = values.driver;
if (!(driver in DEFAULT_MESSAGES)) {
  console.error(`bench: --driver must be one of ${Object.keys(DEFAULT_MESSAGES).join(', ')} (got ${driver})`);
  process.exit(2);
}
const messages = values.messages ? Number(values.messages) : DEFAULT_MESSAGES[driver];
if (!Number.isInteger(messages) || messages < 1) {
  console.error(`bench: --messages must be a positive integer (got ${values.messages})`);
  process.exit(2);
}
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`bench: --rounds must be a positive integer (got ${values.rounds})`);
  process.exit(2);
}
const levels = values.concurrency.split(',').map(Number);
if (levels.some((c) => !Number.isInteger(c) || c < 1)) {
  console.error(
    `bench: --concurrency must be a comma-separated list of positive integers (got ${values.concurrency})`,
  );
  process.exit(2);
}

if (values.outbox) {
  await import('./bench-outbox.mjs').then((m) =>
    m.benchOutbox({ driver, messages: values.messages, url: values.url, json: values.json }),
  );
  process.exit(0);
}

let module;
try {
  module = await import(new URL(`../packages/adapter-${driver}/bench/bench.mjs`, import.meta.url).href);
} catch (error) {
  console.error(`bench: no benchmark for driver ${driver}: ${error.message}`);
  process.exit(2);
}

const url = values.url ?? process.env[`PLUGMQ_${driver.toUpperCase()}_URL`];
const rows = [];
for (const concurrency of levels) {
  const scenario = `concurrency-${concurrency}`;
  const onProgress = (done) => {
    if (!values.json && process.stderr.isTTY) process.stderr.write(`\r  ${scenario}: ${done}/${messages}`);
  };
  if (!values.json) process.stderr.write(`${driver} ${scenario}: ${messages} messages…\n`);
  // Driver and baseline both run in each round (after one discarded warm-up pass of each, and
  // alternating which goes first); the round with the median ratio is reported, so one noisy
  // moment on a shared machine does not decide the figure. The spread of the rounds' ratios is
  // reported beside it.
  const results = [];
  for (let round = 0; round < rounds; round++) {
    results.push(await module.run({ messages, concurrency, url, onProgress }));
  }
  results.sort(
    (a, b) => a.adapter.msgsPerSec / a.baseline.msgsPerSec - b.adapter.msgsPerSec / b.baseline.msgsPerSec,
  );
  const { adapter, baseline } = results[Math.floor(results.length / 2)];
  const ratioOf = (result) => round(result.adapter.msgsPerSec / result.baseline.msgsPerSec);
  if (!values.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  const row = {
    driver,
    scenario,
    messages,
    rounds,
    msgsPerSec: Math.round(adapter.msgsPerSec),
    baselineMsgsPerSec: Math.round(baseline.msgsPerSec),
    ratio: round(adapter.msgsPerSec / baseline.msgsPerSec),
    ratioMin: ratioOf(results[0]),
    ratioMax: ratioOf(results[results.length - 1]),
    p50Ms: adapter.p50Ms,
    p99Ms: adapter.p99Ms,
    baselineP50Ms: baseline.p50Ms,
    baselineP99Ms: baseline.p99Ms,
  };
  rows.push(row);
  if (values.json) console.log(JSON.stringify(row));
}

if (!values.json) {
  console.table(
    rows.map((r) => ({
      scenario: r.scenario,
      messages: r.messages,
      'msgs/s': r.msgsPerSec,
      'baseline msgs/s': r.baselineMsgsPerSec,
      ratio: r.ratio,
      'ratio min–max': `${r.ratioMin}–${r.ratioMax}`,
      'p50 ms': r.p50Ms,
      'p99 ms': r.p99Ms,
    })),
  );
}
