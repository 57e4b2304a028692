import { createQueueManager, registerDriver } from '@plugmq/core';
import { driver } from '../../dist/index.js';

registerDriver(driver);
const N = 20000,
  WINDOW = 256;
const m = await createQueueManager({
  driver: 'kafka',
  url: 'kafka://127.0.0.1:9092',
  ...(process.env.P ? { prefetch: Number(process.env.P) } : {}),
});
const type = 'pubonly.' + Date.now();
await m.publish(type, { warm: 1 });
const body = { sentAt: 0, payload: 'x'.repeat(220) };
let next = 0;
const t = performance.now();
const cpu = process.cpuUsage();
await Promise.all(
  Array.from({ length: WINDOW }, async () => {
    while (next < N) {
      next++;
      await m.publish(type, body);
    }
  }),
);
console.log(
  'publish only msgs/s',
  Math.round(N / ((performance.now() - t) / 1000)),
  'cpu us/msg',
  (() => {
    const c = process.cpuUsage(cpu);
    return ((c.user + c.system) / N).toFixed(1);
  })(),
);
let got = 0;
let done;
const p = new Promise((r) => (done = r));
const t2 = performance.now();
const cpu2 = process.cpuUsage();
await m.consume(
  type,
  async () => {
    if (++got === N + 1) done();
  },
  { group: 'g' + Date.now(), startFrom: 'earliest', concurrency: Number(process.env.C ?? 1) },
);
await p;
console.log(
  'consume only msgs/s',
  Math.round(N / ((performance.now() - t2) / 1000)),
  'cpu us/msg',
  (() => {
    const c = process.cpuUsage(cpu2);
    return ((c.user + c.system) / N).toFixed(1);
  })(),
);
await m.close();
