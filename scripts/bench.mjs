#!/usr/bin/env node
// pnpm bench [--driver memory|rabbitmq|redis|kafka|postgres] [--json] [--messages N] [--rounds 7] [--url URL]
//            [--scenarios throughput,batch,features,claim-check,outbox,inspect] [--batch-messages 2000] [--batch-size 100]
//            [--store fs|redis] [--redis-url URL] [--inspect-every-ms 2000] [--inspect-seconds 40]
//            [--client kafkajs|platformatic]
// Runs each throughput scenario on the driver and on its raw baseline in the same process, then the
// batch scenario (scripts/bench-batch.mjs: consumeBatch against consume for the same simulated bulk
// insert), the features scenario (scripts/bench-features.mjs: delayMs, priority and keys against the
// plain path, for each the driver declares) and, when listed, inspect overhead (scripts/bench-inspect.mjs: the plain path with and without
// inspect() every 2 s), claim-check at 1 MiB bodies (packages/claim-check/bench) and outbox relay
// throughput (scripts/bench-outbox.mjs, PostgreSQL), and prints
// tables (or one JSON object per line). Never a test: figures vary between runs on shared machines.
import { parseArgs } from 'node:util';
import { runBatchScenario } from './bench-batch.mjs';
import { runFeaturesScenario } from './bench-features.mjs';
import { runInspectScenario } from './bench-inspect.mjs';
import { loadStartBroker, round } from './bench-lib.mjs';

// Each side of a round runs for a few seconds at least: shorter rounds measure start-up and GC
// timing more than the steady state.
const DEFAULT_MESSAGES = {
  memory: 200_000,
  rabbitmq: 20_000,
  redis: 50_000,
  kafka: 50_000,
  postgres: 5_000,
};

const { values } = parseArgs({
  options: {
    driver: { type: 'string', default: 'memory' },
    json: { type: 'boolean', default: false },
    messages: { type: 'string' },
    url: { type: 'string' },
    concurrency: { type: 'string', default: '1,16' },
    rounds: { type: 'string', default: '7' },
    scenarios: { type: 'string', default: 'throughput,batch,features' },
    'batch-messages': { type: 'string', default: '2000' },
    'batch-size': { type: 'string', default: '100' },
    help: { type: 'boolean', short: 'h', default: false },
    store: { type: 'string', default: 'fs' },
    'redis-url': { type: 'string' },
    'inspect-every-ms': { type: 'string', default: '2000' },
    'inspect-seconds': { type: 'string', default: '40' },
    // Kafka only: the client library behind the driver and the raw baseline.
    client: { type: 'string', default: 'kafkajs' },
  },
});

if (values.help) {
  console.log(
    'usage: pnpm bench [--driver memory|rabbitmq|redis|kafka|postgres] [--json] [--messages N] [--concurrency 1,16] [--rounds 3] [--url URL] [--scenarios throughput,batch,features,claim-check,outbox,inspect] [--batch-messages 2000] [--batch-size 100] [--store fs|redis] [--redis-url URL] [--inspect-every-ms 2000] [--inspect-seconds 40] [--client kafkajs|platformatic]',
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

const scenarios = new Set(values.scenarios.split(','));
const SCENARIOS = ['throughput', 'batch', 'features', 'claim-check', 'outbox', 'inspect'];
if ([...scenarios].some((name) => !SCENARIOS.includes(name))) {
  console.error(`bench: --scenarios must list some of ${SCENARIOS.join(', ')} (got ${values.scenarios})`);
  process.exit(2);
}
const batchMessages = Number(values['batch-messages']);
const batchSize = Number(values['batch-size']);
if (![batchMessages, batchSize].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error('bench: --batch-messages and --batch-size must be positive integers');
  process.exit(2);
}

let module;
try {
  module = await import(new URL(`../packages/adapter-${driver}/bench/bench.mjs`, import.meta.url).href);
} catch (error) {
  console.error(`bench: no benchmark for driver ${driver}: ${error.message}`);
  process.exit(2);
}

/** A broker this run started (no --url, no PLUGMQ_<DRIVER>_URL): stopped at the end. */
let startedBroker;
let url = values.url ?? process.env[`PLUGMQ_${driver.toUpperCase()}_URL`];
if (url === undefined && ['rabbitmq', 'redis', 'kafka'].includes(driver)) {
  // The way `pnpm test` gets its brokers (a container, else the local install that
  // `pnpm brokers:up` provides), so `pnpm bench --driver kafka` works on a fresh clone.
  const startBroker = await loadStartBroker();
  // The testkit tells where the broker came from on stdout; here that goes to stderr, so that
  // stdout stays one JSON object per line under --json.
  const info = console.info;
  console.info = console.error;
  try {
    startedBroker = await startBroker(driver);
  } catch (error) {
    console.error(
      `bench: no ${driver} broker: pass --url (or PLUGMQ_${driver.toUpperCase()}_URL), or run \`pnpm brokers:up ${driver}\` first.\n${error.message}`,
    );
    process.exit(2);
  } finally {
    console.info = info;
  }
  url = startedBroker.url;
}
const rows = [];
for (const concurrency of scenarios.has('throughput') ? levels : []) {
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
    results.push(await module.run({ messages, concurrency, url, onProgress, client: values.client }));
  }
  results.sort(
    (a, b) => a.adapter.msgsPerSec / a.baseline.msgsPerSec - b.adapter.msgsPerSec / b.baseline.msgsPerSec,
  );
  const { adapter, baseline } = results[Math.floor(results.length / 2)];
  const ratioOf = (result) => round(result.adapter.msgsPerSec / result.baseline.msgsPerSec);
  // CPU per message likewise from its own median round (the paired ratio of each round, sorted),
  // not from the round the throughput ratio picked: the two vary independently.
  const cpuRatioOf = (result) => result.adapter.cpuUsPerMsg / result.baseline.cpuUsPerMsg;
  const byCpu = [...results].sort((a, b) => cpuRatioOf(a) - cpuRatioOf(b));
  const cpuMedian = byCpu[Math.floor(byCpu.length / 2)];
  if (!values.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  const row = {
    driver,
    scenario,
    messages,
    rounds,
    // CPU per message leads: on a shared machine it varies far less than msgs/s, and it is what
    // the library costs the application whatever else runs beside it.
    cpuUsPerMsg: round(cpuMedian.adapter.cpuUsPerMsg, 2),
    baselineCpuUsPerMsg: round(cpuMedian.baseline.cpuUsPerMsg, 2),
    cpuRatio: round(cpuRatioOf(cpuMedian)),
    cpuRatioMin: round(cpuRatioOf(byCpu[0])),
    cpuRatioMax: round(cpuRatioOf(byCpu[byCpu.length - 1])),
    msgsPerSec: Math.round(adapter.msgsPerSec),
    baselineMsgsPerSec: Math.round(baseline.msgsPerSec),
    ratio: round(adapter.msgsPerSec / baseline.msgsPerSec),
    ratioMin: ratioOf(results[0]),
    ratioMax: ratioOf(results[results.length - 1]),
    p50Ms: adapter.p50Ms,
    p99Ms: adapter.p99Ms,
    baselineP50Ms: baseline.p50Ms,
    baselineP99Ms: baseline.p99Ms,
    ...(driver === 'kafka' ? { client: values.client } : {}),
  };
  rows.push(row);
  if (values.json) console.log(JSON.stringify(row));
}

if (!values.json && rows.length > 0) {
  console.table(
    rows.map((r) => ({
      scenario: r.scenario,
      messages: r.messages,
      'CPU µs/msg': r.cpuUsPerMsg,
      'baseline CPU µs/msg': r.baselineCpuUsPerMsg,
      'CPU ratio': r.cpuRatio,
      'CPU ratio min–max': `${r.cpuRatioMin}–${r.cpuRatioMax}`,
      'msgs/s': r.msgsPerSec,
      'baseline msgs/s': r.baselineMsgsPerSec,
      ratio: r.ratio,
      'ratio min–max': `${r.ratioMin}–${r.ratioMax}`,
      'p50 ms': r.p50Ms,
      'p99 ms': r.p99Ms,
    })),
  );
}

if (scenarios.has('batch')) {
  if (!values.json) {
    process.stderr.write(
      `${driver} batch: ${batchMessages} messages, consumeBatch (maxBatchSize ${batchSize}) vs consume…\n`,
    );
  }
  const batchRows = await runBatchScenario(() => module.batchTarget(url, values.client), {
    driver,
    messages: batchMessages,
    // Each round runs both sides, the single side at a few hundred messages a second: 3 rounds
    // at most keep the scenario to a minute or so.
    rounds: Math.min(rounds, 3),
    levels,
    maxBatchSize: batchSize,
    maxWaitMs: 10,
  });
  if (values.json) for (const row of batchRows) console.log(JSON.stringify(row));
  else
    console.table(
      batchRows.map((r) => ({
        scenario: r.scenario,
        messages: r.messages,
        'batch msgs/s': r.batchMsgsPerSec,
        'single msgs/s': r.singleMsgsPerSec,
        ratio: r.ratio,
        'ratio min–max': `${r.ratioMin}–${r.ratioMax}`,
        'mean batch': r.meanBatch,
        'batch CPU µs/msg': r.batchCpuUsPerMsg,
        'single CPU µs/msg': r.singleCpuUsPerMsg,
      })),
    );
}

if (scenarios.has('features')) {
  const featureMessages = Math.min(messages, 5_000);
  if (!values.json) {
    process.stderr.write(
      `${driver} features: ${featureMessages} messages with delayMs / priority / key against the plain path…\n`,
    );
  }
  const featureRows = await runFeaturesScenario(() => module.batchTarget(url, values.client), {
    driver,
    messages: featureMessages,
    rounds: Math.min(rounds, 3),
    levels,
    featureConfig: module.featureConfig,
  });
  if (values.json) for (const row of featureRows) console.log(JSON.stringify(row));
  else
    console.table(
      featureRows.map((r) => ({
        scenario: r.scenario,
        messages: r.messages,
        'feature msgs/s': r.featureMsgsPerSec,
        'plain msgs/s': r.plainMsgsPerSec,
        ratio: r.ratio,
        'ratio min–max': `${r.ratioMin}–${r.ratioMax}`,
        'feature CPU µs/msg': r.featureCpuUsPerMsg,
        'plain CPU µs/msg': r.plainCpuUsPerMsg,
      })),
    );
}

if (scenarios.has('inspect')) {
  const inspectEveryMs = Number(values['inspect-every-ms']);
  const seconds = Number(values['inspect-seconds']);
  if (![inspectEveryMs, seconds].every((n) => Number.isInteger(n) && n >= 1)) {
    console.error('bench: --inspect-every-ms and --inspect-seconds must be positive integers');
    process.exit(2);
  }
  if (!values.json) {
    process.stderr.write(
      `${driver} inspect: ${seconds} s with and ${seconds} s without inspect() every ${inspectEveryMs} ms, interleaved…\n`,
    );
  }
  const inspectRows = await runInspectScenario(() => module.batchTarget(url), {
    driver,
    seconds,
    levels,
    inspectEveryMs,
  });
  if (values.json) for (const row of inspectRows) console.log(JSON.stringify(row));
  else
    console.table(
      inspectRows.map((r) => ({
        scenario: r.scenario,
        's/side': r.secondsPerSide,
        'plain msgs/s': r.plainMsgsPerSec,
        'inspected msgs/s': r.inspectedMsgsPerSec,
        ratio: r.ratio,
        'pair ratio min–max': `${r.ratioMin}–${r.ratioMax}`,
        inspections: r.inspections,
        'inspect ms': r.meanInspectMs,
        'inspect share %': r.inspectSharePct,
      })),
    );
}

if (scenarios.has('claim-check')) {
  const { runScenario } = await import('../packages/claim-check/bench/bench.mjs');
  await runScenario(driver, values);
}

if (scenarios.has('outbox')) {
  const { benchOutbox } = await import('./bench-outbox.mjs');
  await benchOutbox({ driver, messages: values.messages, url: values.url, json: values.json });
}

// A server the driver's bench module started for itself (postgres without --url) stops here.
await module.close?.();
await startedBroker?.stop();
