// Memory driver benchmark: PlugMQ's memory driver against a plain in-process array + promise
// hand-off doing the same work (publish N, handle N with the same concurrency) in the same run.
import { createQueueManager } from '@plugmq/core';
import {
  latencyStats,
  makeBody,
  pairedRounds,
  startMeter,
  withTimeout,
} from '../../../scripts/bench-lib.mjs';

/** The baseline: an array queue, a promise to wake an idle worker, `concurrency` async workers. */
async function runBaseline({ messages, concurrency, onProgress }) {
  const queue = [];
  let head = 0;
  const wake = [];
  let handled = 0;
  const latencies = new Float64Array(messages);
  const handler = async (message) => {
    latencies[handled++] = performance.now() - message.sentAt;
    if ((handled & 0x3fff) === 0) onProgress?.(handled);
    // The last message: the idle workers have nothing left to wait for.
    if (handled === messages) for (const resolve of wake.splice(0)) resolve();
  };
  const worker = async () => {
    while (handled < messages) {
      if (head < queue.length) {
        const message = queue[head];
        queue[head++] = undefined;
        await handler(message);
      } else {
        await new Promise((resolve) => wake.push(resolve));
      }
    }
  };
  // One idle worker per message: waking them all would have each of them but one find the queue
  // empty again, a promise per worker per message (at concurrency 16, most of the baseline's cost).
  const publish = async (body) => {
    queue.push(body);
    wake.pop()?.();
  };
  const meter = startMeter();
  const workers = Array.from({ length: concurrency }, worker);
  const { payload } = makeBody();
  for (let i = 0; i < messages; i++) await publish({ sentAt: performance.now(), payload });
  await withTimeout(Promise.all(workers), 60_000);
  for (const resolve of wake) resolve();
  const measured = meter.stop(handled);
  return { ...measured, ...latencyStats(latencies, handled) };
}

async function runPlugmq({ messages, concurrency, onProgress }) {
  const manager = await createQueueManager({ driver: 'memory', namespace: `bench-${Date.now()}` });
  const type = 'bench.memory';
  const latencies = new Float64Array(messages);
  let handled = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  await manager.consume(
    type,
    async (message) => {
      latencies[handled++] = performance.now() - message.body.sentAt;
      if ((handled & 0x3fff) === 0) onProgress?.(handled);
      if (handled === messages) finish();
    },
    { group: 'bench', concurrency },
  );
  const { payload } = makeBody();
  const meter = startMeter();
  for (let i = 0; i < messages; i++) await manager.publish(type, { sentAt: performance.now(), payload });
  await withTimeout(done, 60_000);
  const measured = meter.stop(handled);
  await manager.close();
  return { ...measured, ...latencyStats(latencies, handled) };
}

export const run = pairedRounds(runPlugmq, runBaseline);

/** For the batch scenario (scripts/bench-batch.mjs). */
export function batchTarget() {
  return {
    config: { driver: 'memory', namespace: `bench-batch-${Date.now()}` },
    type: 'bench.batch',
    drop: async () => {},
  };
}
