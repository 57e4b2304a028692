import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driver } from '../src/index.js';

// The seeds' channel queue dropped messages when a subscriber's buffer was full. Here a slow
// consumer makes publish wait: 100 000 messages published as fast as publish allows all arrive,
// once each, and memory stays bounded by the buffer, not by the number published.
const MESSAGES = 100_000;
let manager: QueueManager;

beforeAll(async () => {
  registerDriver(driver);
  manager = await createQueueManager({ driver: 'memory', namespace: 'flood', publishTimeoutMs: 60_000 });
});
afterAll(() => manager.close());

describe('memory flood', () => {
  it(
    `${MESSAGES} messages to a slow consumer: none dropped, peak RSS bounded`,
    { timeout: 120_000 },
    async () => {
      const seen = new Uint8Array(MESSAGES);
      let handled = 0;
      let duplicates = 0;
      let done = () => {};
      const finished = new Promise<void>((resolve) => {
        done = resolve;
      });
      await manager.consume<{ n: number; pad: string }>(
        'flood.orders',
        async (message) => {
          // Slow: every handler yields to the event loop, so publishers outrun it.
          await new Promise((resolve) => setImmediate(resolve));
          const n = message.body.n;
          if (seen[n] !== 0) duplicates++;
          seen[n] = 1;
          if (++handled === MESSAGES) done();
        },
        { group: 'slow' },
      );
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let peakRss = rssBefore;
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }, 20);
      const pad = 'x'.repeat(200);
      const started = performance.now();
      try {
        for (let n = 0; n < MESSAGES; n++) await manager.publish('flood.orders', { n, pad });
        await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 100_000))]);
      } finally {
        clearInterval(sampler);
      }
      const seconds = (performance.now() - started) / 1000;
      const growthMb = (peakRss - rssBefore) / 2 ** 20;
      console.log(
        `memory flood: ${handled}/${MESSAGES} handled in ${seconds.toFixed(1)} s, duplicates ${duplicates}, ` +
          `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (+${growthMb.toFixed(0)} MiB over the start)`,
      );
      expect(handled).toBe(MESSAGES);
      expect(duplicates).toBe(0);
      expect(seen.every((flag) => flag === 1)).toBe(true);
      // Unbounded buffering of 100 000 bodies would cost well over 100 MiB; the buffer holds 1024.
      expect(growthMb).toBeLessThan(100);
    },
  );
});
