// Outbox relay benchmark (`pnpm bench --scenarios outbox`): a backlog of committed outbox rows drained by
// 1 and 2 relays into a QueueManager, against a baseline that reads and deletes the same rows in
// batches of the same size with plain SQL (no key locks, no broker): the relay's own cost.
// CPU per message is this process's (relays and target driver; PostgreSQL's server CPU is not in it).
import { createQueueManager } from '@plugmq/core';
import { createOutbox } from '@plugmq/outbox';
import pg from 'pg';
import { loadStartPostgres, makeBody, round } from '../../../scripts/bench-lib.mjs';

const KEYS = 64;
const BATCH = 100;

async function fill(pool, outbox, messages) {
  const body = makeBody();
  const tx = await pool.connect();
  try {
    for (let i = 0; i < messages; i += BATCH) {
      await tx.query('BEGIN');
      for (let j = i; j < Math.min(messages, i + BATCH); j++) {
        await outbox.publish(tx, 'bench.outbox', body, { key: `k${j % KEYS}` });
      }
      await tx.query('COMMIT');
    }
  } finally {
    tx.release();
  }
}

function measure(startCpu, started, messages) {
  const cpu = process.cpuUsage(startCpu);
  const seconds = (performance.now() - started) / 1000;
  return { msgsPerSec: messages / seconds, cpuUsPerMsg: round((cpu.user + cpu.system) / messages, 1) };
}

async function runRelays(pool, queue, outbox, messages, relays, onProgress) {
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const type = 'bench.outbox';
  const sub = await queue.consume(
    type,
    async () => {
      handled++;
      if ((handled & 0x3ff) === 0) onProgress?.(handled);
      if (handled === messages) finish();
    },
    { group: 'bench', concurrency: 16 },
  );
  const startCpu = process.cpuUsage();
  const started = performance.now();
  const running = Array.from({ length: relays }, () =>
    outbox.relay({ pool, queue, batchSize: BATCH, pollIntervalMs: 5 }),
  );
  await Promise.all(running.map((r) => r.start()));
  await done;
  const result = measure(startCpu, started, messages);
  await Promise.all(running.map((r) => r.stop()));
  await sub.close();
  return result;
}

async function runBaseline(pool, outbox, messages) {
  const client = await pool.connect();
  const t = outbox.names.table;
  const startCpu = process.cpuUsage();
  const started = performance.now();
  let moved = 0;
  try {
    while (moved < messages) {
      await client.query('BEGIN');
      const rows = await client.query(
        `SELECT seq, id, type, key, body, headers FROM ${t} ORDER BY seq LIMIT ${BATCH}`,
      );
      for (const row of rows.rows) JSON.parse(row.body.toString('utf8'));
      await client.query(`DELETE FROM ${t} WHERE seq = ANY($1::bigint[])`, [rows.rows.map((r) => r.seq)]);
      await client.query('COMMIT');
      moved += rows.rows.length;
      if (rows.rows.length === 0) break;
    }
  } finally {
    client.release();
  }
  return measure(startCpu, started, messages);
}

/** One row per relay count: relay throughput and CPU, and the plain-SQL baseline beside it. */
export async function run({ messages, driver = 'memory', url, relays = [1, 2], onProgress }) {
  const startPostgres = await loadStartPostgres();
  const server = await startPostgres();
  const pool = new pg.Pool({ connectionString: server.url, max: 8 });
  const queue = await createQueueManager(driver === 'memory' ? { driver } : { driver, url });
  const rows = [];
  try {
    for (const count of relays) {
      const outbox = createOutbox({ table: `bench_outbox_${count}_${Date.now()}` });
      await outbox.migrate(pool);
      await fill(pool, outbox, messages);
      const baseline = await runBaseline(pool, outbox, messages);
      await fill(pool, outbox, messages);
      const relay = await runRelays(pool, queue, outbox, messages, count, onProgress);
      rows.push({ relays: count, source: server.source, relay, baseline });
      await pool.query(`DROP TABLE ${outbox.names.table}`);
    }
  } finally {
    await queue.close();
    await pool.end();
    await server.stop();
  }
  return rows;
}
