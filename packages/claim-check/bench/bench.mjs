// Claim-check benchmark (`pnpm bench --scenario claim-check [--driver X] [--store fs|redis]`): 1 MiB
// JSON bodies published and handled through withClaimCheck (payloads in the store, deleted once
// handled: one group), against the same bodies sent whole through the same driver where the
// driver's default limit lets them (Kafka's 1 048 588 bytes does not: that is the case claim-check
// is for). CPU per message is this process's user + system time (process.cpuUsage) over the
// messages handled: producer and consumer both run here; the broker's and Redis' CPU is not in it.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { Redis } from 'ioredis';
import { pipelined, round, withDeadline } from '../../../scripts/bench-lib.mjs';
import { filesystemPayloadStore, redisPayloadStore, withClaimCheck } from '../dist/index.js';

export const BODY_BYTES = 1024 * 1024;
const TIMEOUT_MS = 300_000;

/** A JSON body of exactly BODY_BYTES once serialised. */
function makeBigBody() {
  const body = { data: '' };
  body.data = 'x'.repeat(BODY_BYTES - JSON.stringify(body).length);
  return body;
}

async function loadDriver(driver) {
  const module = await import(`@plugmq/adapter-${driver}`);
  registerDriver(module.driver);
}

async function openStore(kind, redisUrl) {
  if (kind === 'redis') {
    const redis = new Redis(redisUrl ?? 'redis://127.0.0.1:6379');
    return {
      store: redisPayloadStore(redis, { keyPrefix: `bench:${randomUUID()}:` }),
      close: () => redis.quit(),
    };
  }
  const directory = await mkdtemp(join(tmpdir(), 'plugmq-bench-cc-'));
  return {
    store: filesystemPayloadStore({ directory }),
    close: () => rm(directory, { recursive: true, force: true }),
  };
}

/** One pass: `messages` bodies published `concurrency` at a time and handled `concurrency` at a time. */
async function pass({ driver, url, messages, concurrency, store }) {
  const raw = await createQueueManager({
    driver,
    ...(url ? { url } : {}),
    ...(driver === 'kafka' ? { maxWaitTimeMs: 50 } : {}),
  });
  const queue = store ? withClaimCheck(raw, { store, deleteAfterHandled: true }) : raw;
  const type = `bench.cc.${randomUUID().slice(0, 8)}`;
  const body = makeBigBody();
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  try {
    await queue.consume(
      type,
      (message) => {
        if (message.body.data.length !== body.data.length) throw new Error('bench: body arrived cut');
        if (++handled === messages) finish();
      },
      { group: 'bench', concurrency, retry: { maxAttempts: 1 }, deadLetter: false },
    );
    const deadline = withDeadline(TIMEOUT_MS, `${messages} claim-check messages on ${driver}`);
    const cpu = process.cpuUsage();
    const started = performance.now();
    try {
      await Promise.race([
        pipelined(concurrency, messages, () => queue.publish(type, body)).then(() => done),
        deadline.promise,
      ]);
    } finally {
      deadline.cancel();
    }
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    return {
      msgsPerSec: messages / seconds,
      mbPerSec: (messages * BODY_BYTES) / 2 ** 20 / seconds,
      cpuUsPerMsg: (used.user + used.system) / messages,
    };
  } catch (error) {
    if (error?.code === 'INVALID_ARGUMENT') return { refused: error.message };
    throw error;
  } finally {
    await queue.close();
  }
}

/** Rounds alternating claim-check and whole bodies after a discarded warm-up; medians reported. */
export async function runClaimCheckBench({
  driver,
  url,
  messages,
  concurrency,
  rounds,
  storeKind,
  redisUrl,
}) {
  await loadDriver(driver);
  const { store, close } = await openStore(storeKind, redisUrl);
  try {
    const options = { driver, url, concurrency };
    await pass({ ...options, messages: Math.min(messages, 20), store });
    await pass({ ...options, messages: Math.min(messages, 20) });
    const checked = [];
    const whole = [];
    for (let index = 0; index < rounds; index++) {
      const order = index % 2 === 0 ? [true, false] : [false, true];
      for (const claim of order) {
        const result = await pass({ ...options, messages, ...(claim ? { store } : {}) });
        (claim ? checked : whole).push(result);
      }
    }
    return { claimCheck: median(checked), whole: median(whole) };
  } finally {
    await close();
  }
}

function median(results) {
  if (results[0]?.refused) return { refused: results[0].refused };
  const at = (field) => {
    const sorted = results.map((result) => result[field]).sort((a, b) => a - b);
    return round(sorted[Math.floor(sorted.length / 2)], 1);
  };
  return { msgsPerSec: at('msgsPerSec'), mbPerSec: at('mbPerSec'), cpuUsPerMsg: at('cpuUsPerMsg') };
}

const DEFAULT_MESSAGES = { memory: 400, redis: 200, rabbitmq: 200, kafka: 200 };

/** `pnpm bench --scenario claim-check`: parses the shared flags, runs, prints a table or JSON. */
export async function runScenario(driver, values) {
  const messages = values.messages ? Number(values.messages) : DEFAULT_MESSAGES[driver];
  const rounds = values.rounds === '7' ? 3 : Number(values.rounds);
  const concurrency = Number(values.concurrency.split(',').at(-1));
  if (![messages, rounds, concurrency].every((n) => Number.isInteger(n) && n > 0)) {
    console.error('bench: --messages, --rounds and --concurrency must be positive integers');
    process.exit(2);
  }
  if (values.store !== 'fs' && values.store !== 'redis') {
    console.error(`bench: --store must be fs or redis (got ${values.store})`);
    process.exit(2);
  }
  const url = values.url ?? process.env[`PLUGMQ_${driver.toUpperCase()}_URL`];
  const redisUrl = values['redis-url'] ?? process.env.PLUGMQ_REDIS_URL;
  if (!values.json) {
    process.stderr.write(
      `${driver} claim-check (${values.store} store): ${messages} bodies of 1 MiB, concurrency ${concurrency}, ${rounds} rounds…\n`,
    );
  }
  const result = await runClaimCheckBench({
    driver,
    url,
    messages,
    concurrency,
    rounds,
    storeKind: values.store,
    redisUrl,
  });
  const row = {
    driver,
    scenario: 'claim-check-1MiB',
    store: values.store,
    messages,
    rounds,
    concurrency,
    ...result,
  };
  if (values.json) {
    console.log(JSON.stringify(row));
    return;
  }
  const line = (name, r) =>
    r.refused
      ? { path: name, 'msgs/s': '-', 'MiB/s': '-', 'CPU µs/msg': '-', note: 'refused: over maxMessageBytes' }
      : { path: name, 'msgs/s': r.msgsPerSec, 'MiB/s': r.mbPerSec, 'CPU µs/msg': r.cpuUsPerMsg, note: '' };
  console.table([line(`claim-check (${values.store})`, result.claimCheck), line('whole body', result.whole)]);
}
