// Redis driver benchmark: PlugMQ's redis driver against raw ioredis doing the same work in the
// same run: 256-byte JSON bodies XADDed to a stream with the same number of publishes in flight
// (auto-pipelined on both sides), read by a consumer group with XREADGROUP COUNT (the same batch
// size the driver uses by default: 2 × concurrency, at least 4) on a connection of its own, handled
// `concurrency` at a time, each XACKed. Producer and consumer each have their own connections.
// Acks go out as the driver sends them: those of one event-loop turn in one `XACK key group id…`,
// not awaited before the next handler starts, reading on while acks are in flight (up to 4 read
// batches of them). Reads as the driver reads: once `lowWater` slots are free (min(4, batch / 2)),
// at the end of the event-loop turn that freed them. (A consumer that awaits one XACK per message,
// or reads whenever one slot is free, measures up to ~1.5× slower at concurrency 1: that would
// credit the driver with its batching, not measure its overhead.)
import { randomUUID } from 'node:crypto';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { Redis } from 'ioredis';
import {
  latencyStats,
  makeBody,
  pairedRounds,
  pipelined,
  startMeter,
  withDeadline,
} from '../../../scripts/bench-lib.mjs';
import { driver } from '../dist/index.js';

registerDriver(driver);

const DEFAULT_URL = 'redis://127.0.0.1:6379';
/** Publishes awaiting their reply at once, on both sides. */
const WINDOW = 256;
const TIMEOUT_MS = 120_000;

export async function runBaseline({ messages, concurrency, url, onProgress }) {
  // The same key length as the driver's stream (`<keyPrefix>:{<type>}`): keys travel in every
  // XADD and XACK, so a longer name on one side would be measured as client cost.
  const stream = `bench-raw-${shortId()}:{bench.redis}`;
  const group = 'bench';
  const batch = Math.max(4, concurrency * 2);
  const lowWater = Math.min(4, Math.max(1, Math.floor(batch / 2)));
  const producer = new Redis(url, { enableAutoPipelining: true });
  const commands = new Redis(url, { enableAutoPipelining: true });
  const reader = new Redis(url);
  await commands.xgroup('CREATE', stream, group, '$', 'MKSTREAM');

  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  // A hand-written consumer: read a batch, run at most `concurrency` handlers at once, XACK each,
  // read again when there is room.
  let inFlight = 0;
  let unacked = 0;
  let wake;
  let acks = [];
  const flushAcks = () => {
    const ids = acks;
    acks = [];
    commands.xack(stream, group, ...ids).then(() => {
      unacked -= ids.length;
      wake?.();
    });
  };
  const handle = async (id, fields) => {
    const body = JSON.parse(fields[fields.indexOf('body') + 1]);
    latencies[handled++] = performance.now() - body.sentAt;
    if ((handled & 0x3ff) === 0) onProgress?.(handled);
    unacked++;
    if (acks.push(id) === 1) setImmediate(flushAcks);
    if (handled === messages) finish();
  };
  const queue = [];
  const pump = () => {
    while (inFlight < concurrency && queue.length > 0) {
      const [id, fields] = queue.shift();
      inFlight++;
      handle(id, fields).finally(() => {
        inFlight--;
        pump();
        wake?.();
      });
    }
  };
  let reading = true;
  const readLoop = (async () => {
    while (reading && handled < messages) {
      const room = unacked >= batch * 4 ? 0 : batch - inFlight - queue.length;
      if (room < lowWater) {
        await new Promise((resolve) => {
          wake = resolve;
        });
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const reply = await reader.xreadgroup(
        'GROUP',
        group,
        'c1',
        'COUNT',
        room,
        'BLOCK',
        1000,
        'STREAMS',
        stream,
        '>',
      );
      if (!reply) continue;
      for (const [, entries] of reply) queue.push(...entries);
      pump();
    }
  })();

  const body = makeBody();
  const meter = startMeter();
  const limit = withDeadline(TIMEOUT_MS, 'raw ioredis');
  await Promise.race([
    pipelined(WINDOW, messages, () => {
      body.sentAt = performance.now();
      return producer.xadd(stream, '*', 'id', randomUUID(), 'body', JSON.stringify(body));
    }).then(() => done),
    limit.promise,
  ]);
  limit.cancel();
  const measured = meter.stop(handled);
  reading = false;
  reader.disconnect();
  await readLoop.catch(() => {});
  await commands.del(stream);
  producer.disconnect();
  commands.disconnect();
  return { ...measured, ...latencyStats(latencies, handled) };
}

export async function runPlugmq({ messages, concurrency, url, onProgress }) {
  const keyPrefix = `bench-pmq-${shortId()}`;
  const config = { driver: 'redis', url, keyPrefix };
  const consumer = await createQueueManager(config);
  const producer = await createQueueManager(config);
  const type = 'bench.redis';
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
  await dropKeys(url, keyPrefix);
  return { ...measured, ...latencyStats(latencies, handled) };
}

/** A run's unique part of its key names, as long on both sides. */
function shortId() {
  return randomUUID().slice(0, 8);
}

/** The bench's keys are throw-away: remove them so runs do not pile up on the server. */
async function dropKeys(url, keyPrefix) {
  const client = new Redis(url);
  const keys = await client.keys(`${keyPrefix}:*`);
  if (keys.length > 0) await client.del(...keys);
  client.disconnect();
}

export const run = pairedRounds(runPlugmq, runBaseline, { url: DEFAULT_URL });

/** For the batch scenario (scripts/bench-batch.mjs): a throw-away key prefix and its clean-up. */
export function batchTarget(url = DEFAULT_URL) {
  const keyPrefix = `bench-batch-${shortId()}`;
  return {
    config: { driver: 'redis', url, keyPrefix },
    type: 'bench.batch',
    drop: () => dropKeys(url, keyPrefix),
  };
}

/**
 * The features scenario's ordered side (scripts/bench-features.mjs) with `partitions`, which
 * turns orderedByKey on: keyed messages then go to their key's partition stream.
 */
export const featureConfig = { ordered: { partitions: 4 } };
