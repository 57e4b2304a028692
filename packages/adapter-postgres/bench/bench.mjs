// PostgreSQL driver benchmark: PlugMQ's postgres driver against the raw `pg` client doing the same
// work in the same run, on the same tables (the driver creates both schemas, before the clock):
// 256-byte JSON bodies INSERTed with the same number of publishes in flight, each one statement
// on a pool of 10 connections; a consumer woken by the same trigger's NOTIFY on a LISTEN
// connection of its own, claiming with the same `claim()` function (FOR UPDATE SKIP LOCKED, a
// lease) as many rows as it has free slots (prefetch = concurrency), handling them `concurrency`
// at a time, and deleting the acked rows of one event-loop turn in one statement while it claims
// on. So the ratio measures the driver's overhead, not a different way of using PostgreSQL. The
// raw producer writes one row straight into the group's queue: the driver's INSERT … SELECT also
// joins the `groups` table, which is what routing a type to its groups costs.
import { randomUUID } from 'node:crypto';
import { createQueueManager, registerDriver } from '@plugmq/core';
import pg from 'pg';
import {
  latencyStats,
  loadStartPostgres,
  makeBody,
  pairedRounds,
  pipelined,
  startMeter,
  withDeadline,
} from '../../../scripts/bench-lib.mjs';
import { driver, tables } from '../dist/index.js';

registerDriver(driver);

/** Publishes awaiting their statement at once, on both sides. */
const WINDOW = 64;
const POOL_SIZE = 10;
const LEASE_MS = 30_000;
/** Longest the raw consumer waits without a NOTIFY, as the driver's default `pollMs`. */
const POLL_MS = 1_000;
const TIMEOUT_MS = 180_000;

/** The server: `--url` / PLUGMQ_POSTGRES_URL, else the testkit's (started once, stopped by `close`). */
let server;
async function serverUrl(url) {
  if (url) return url;
  server ??= (await loadStartPostgres())();
  return (await server).url;
}

/** Stops the server the bench started, if it did. */
export async function close() {
  if (server) await (await server).stop();
}

function schemaName(side) {
  return `bench_${side}_${randomUUID().slice(0, 8)}`;
}

export async function runBaseline({ messages, concurrency, url, onProgress }) {
  const connectionString = await serverUrl(url);
  const schema = schemaName('raw');
  // The driver creates the tables, the claim function and the NOTIFY trigger; the clock starts later.
  const setup = await createQueueManager({ driver: 'postgres', url: connectionString, schema });
  await setup.close();
  const { deliveries, channel } = tables(schema);
  const type = 'bench.postgres';
  const group = 'bench';
  const token = randomUUID();
  const producer = new pg.Pool({ connectionString, max: POOL_SIZE });
  const consumer = new pg.Pool({ connectionString, max: POOL_SIZE });
  const listener = new pg.Client({ connectionString });
  await listener.connect();
  await listener.query(`LISTEN ${channel}`);

  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const claimSql = `SELECT * FROM ${schema}.claim($1, $2, $3, $4, $5)`;
  const ackSql = `DELETE FROM ${deliveries} WHERE seq = ANY($1::bigint[]) AND locked_by = $2`;
  let held = 0;
  let acks = [];
  let stopped = false;
  let pumping = false;
  let again = false;
  let timer;
  const flushAcks = () => {
    const seqs = acks;
    acks = [];
    consumer.query(ackSql, [seqs, token]).catch(() => {});
  };
  const handle = async (row) => {
    const body = JSON.parse(row.body.toString('utf8'));
    latencies[handled++] = performance.now() - body.sentAt;
    if ((handled & 0x3ff) === 0) onProgress?.(handled);
    if (handled === messages) finish();
  };
  const settle = (seq) => {
    held--;
    if (acks.push(seq) === 1) setImmediate(flushAcks);
    wake();
  };
  const pump = async () => {
    for (;;) {
      const room = concurrency - held;
      if (stopped || room <= 0) return;
      again = false;
      const { rows } = await consumer.query(claimSql, [group, [type], room, LEASE_MS, token]);
      for (const row of rows) {
        held++;
        const seq = String(row.seq);
        handle(row).then(() => settle(seq));
      }
      if (rows.length < room) return;
    }
  };
  const wake = () => {
    if (stopped) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    clearTimeout(timer);
    pump().finally(() => {
      pumping = false;
      if (again) wake();
      else timer = setTimeout(wake, POLL_MS);
    });
  };
  listener.on('notification', (message) => {
    if (message.payload === group) wake();
  });
  await consumer.query(`INSERT INTO ${tables(schema).groups} (type, grp) VALUES ($1, $2)`, [type, group]);
  wake();

  const insertSql = `INSERT INTO ${deliveries} (grp, type, headers, body) VALUES ($1, $2, $3, $4)`;
  const body = makeBody();
  const meter = startMeter();
  const limit = withDeadline(TIMEOUT_MS, 'raw pg');
  await Promise.race([
    pipelined(WINDOW, messages, () => {
      body.sentAt = performance.now();
      const headers = JSON.stringify({
        'x-plugmq-id': randomUUID(),
        'x-plugmq-content-type': 'application/json',
      });
      return producer.query(insertSql, [group, type, headers, Buffer.from(JSON.stringify(body))]);
    }).then(() => done),
    limit.promise,
  ]);
  limit.cancel();
  const measured = meter.stop(handled);
  stopped = true;
  clearTimeout(timer);
  while (pumping) await new Promise((resolve) => setTimeout(resolve, 5));
  await listener.end();
  await producer.end();
  await consumer.query(`DROP SCHEMA ${schema} CASCADE`);
  await consumer.end();
  return { ...measured, ...latencyStats(latencies, handled) };
}

export async function runPlugmq({ messages, concurrency, url, onProgress }) {
  const connectionString = await serverUrl(url);
  const schema = schemaName('pmq');
  const config = { driver: 'postgres', url: connectionString, schema };
  const consumer = await createQueueManager(config);
  const producer = await createQueueManager(config);
  const type = 'bench.postgres';
  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  await consumer.consume(
    type,
    async (message) => {
      latencies[handled++] = performance.now() - message.body.sentAt;
      if ((handled & 0x3ff) === 0) onProgress?.(handled);
      if (handled === messages) finish();
    },
    { group: 'bench', concurrency },
  );
  const body = makeBody();
  const meter = startMeter();
  const limit = withDeadline(TIMEOUT_MS, 'PlugMQ');
  await Promise.race([
    pipelined(WINDOW, messages, () => {
      body.sentAt = performance.now();
      return producer.publish(type, body);
    }).then(() => done),
    limit.promise,
  ]);
  limit.cancel();
  const measured = meter.stop(handled);
  await producer.close();
  await consumer.close();
  await dropSchema(connectionString, schema);
  return { ...measured, ...latencyStats(latencies, handled) };
}

/** The bench's schemas are throw-away: remove them so runs do not pile up on the server. */
async function dropSchema(connectionString, schema) {
  const client = new pg.Client({ connectionString });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}

export const run = pairedRounds(runPlugmq, runBaseline);

/** For the features scenario (scripts/bench-features.mjs): what replay needs in the config. */
export const featureConfig = { replay: { retentionMs: 600_000 } };

/** For the batch scenario (scripts/bench-batch.mjs): a throw-away schema and its clean-up. */
export async function batchTarget(url) {
  const connectionString = await serverUrl(url);
  const schema = schemaName('batch');
  return {
    config: { driver: 'postgres', url: connectionString, schema },
    type: 'bench.batch',
    drop: () => dropSchema(connectionString, schema),
  };
}
