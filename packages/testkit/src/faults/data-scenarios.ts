import { expect, it } from 'vitest';
import { sleep, uniqueGroup, uniqueType, waitFor } from '../conformance/helpers.js';
import type { FaultEnv } from './env.js';
import { RssSampler } from './rss.js';
import { DeliveryLedger, publishStream } from './stream.js';

// Scenarios 5 and 6: bad bytes and too many of them. Neither may stop a consumer, and neither may
// make the process hold an unbounded number of messages.

export function dataScenarios(env: FaultEnv): void {
  const malformedReason =
    env.skipReason('malformed', true) ??
    (env.options.injectMalformed ? undefined : 'no raw client to inject with');
  const malformedTitle =
    '5. malformed bytes injected with the raw client: dead-lettered with a decode error, the consumer goes on';
  if (malformedReason) it.skip(`${malformedTitle} [does not apply: ${malformedReason}]`, () => {});
  else it(malformedTitle, () => malformed(env), 120_000);

  const size = env.floodSize;
  const floodTitle = `6. a flood of ${size} messages to a slow consumer: publish back-pressures, nothing lost, peak RSS bounded`;
  const floodReason = env.skipReason('flood', false);
  if (floodReason) it.skip(`${floodTitle} [does not apply: ${floodReason}]`, () => {});
  else it(floodTitle, () => flood(env, size), 900_000);
}

async function malformed(env: FaultEnv): Promise<void> {
  const consumer = await env.manager();
  const type = uniqueType('malformed');
  const ledger = new DeliveryLedger();
  await consumer.consume(type, ledger.handler, { group: uniqueGroup('app') });
  // A PlugMQ consumer of the dead-letter type, so its queue exists where a broker needs one.
  await consumer.consume(`${type}.dlq`, () => {}, { group: uniqueGroup('dlq'), deadLetter: false });
  const inject = env.options.injectMalformed as NonNullable<typeof env.options.injectMalformed>;
  const probe = await inject(env.url as string, type);
  try {
    const started = Date.now();
    await publishStream({ manager: consumer, type, count: 10, ledger, concurrency: 1 });
    await ledger.settle(15_000);
    let error: string | undefined;
    await waitFor(
      async () => {
        error = await probe.error();
        return error !== undefined;
      },
      20_000,
      'the dead letter',
    ).catch(() => {});
    env.figures.add({
      driver: env.options.name,
      scenario: '5 malformed',
      messages: 10,
      resolved: ledger.resolved.size,
      lost: ledger.lost().length,
      duplicates: ledger.duplicates(),
      wallMs: Date.now() - started,
      note: `dead letter error: ${String(error).slice(0, 60)}`,
    });
    expect(error, 'the dead letter with x-plugmq-error').toMatch(/DECODE_FAILED/);
    expect(ledger.lost(), 'good messages after the bad one').toEqual([]);
    expect(ledger.delivered.size, 'only the good messages reach the handler').toBe(10);
  } finally {
    await probe.close();
  }
}

async function flood(env: FaultEnv, size: number): Promise<void> {
  // Body: the index. Bitmaps, not sets of ids: the bookkeeping must not be what fills the memory.
  const delivered = new Uint8Array(size);
  const resolved = new Uint8Array(size);
  let deliveries = 0;
  let slow = true;
  const producer = await env.manager({ publishTimeoutMs: 120_000 });
  const consumer = await env.manager();
  const type = uniqueType('flood');
  await consumer.consume<number>(
    type,
    async (message) => {
      // Slow while the flood is published, then drains fast. In-process, publish waits for this
      // consumer, so it yields a macrotask per message (a timer each would make 1 000 000 take
      // 20 minutes); against a broker, 1 ms each with 4 at once, far slower than the publishers.
      if (slow) await (env.hasBroker ? sleep(1) : new Promise((resolve) => setImmediate(resolve)));
      const index = message.body;
      delivered[index] = Math.min(255, (delivered[index] ?? 0) + 1);
      deliveries++;
    },
    { group: uniqueGroup('slow'), concurrency: env.hasBroker ? 4 : 1 },
  );
  const rss = new RssSampler();
  const started = Date.now();
  let rejected = 0;
  let next = 0;
  const pad = 'x'.repeat(100);
  const lane = async () => {
    while (next < size) {
      const index = next++;
      try {
        await producer.publish(type, index, { headers: { pad } });
        resolved[index] = 1;
      } catch {
        rejected++;
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, lane));
  const publishedMs = Date.now() - started;
  const backlog = size - rejected - deliveries;
  slow = false;
  const deadline = Date.now() + 600_000;
  while (deliveries < size - rejected && Date.now() < deadline) await sleep(100);
  const figures = rss.stop();
  let lost = 0;
  let duplicates = 0;
  for (let index = 0; index < size; index++) {
    const times = delivered[index] ?? 0;
    if (resolved[index] === 1 && times === 0) lost++;
    if (times > 1) duplicates += times - 1;
  }
  env.figures.add({
    driver: env.options.name,
    scenario: '6 flood',
    messages: size,
    resolved: size - rejected,
    rejected,
    lost,
    duplicates,
    peakRssMiB: figures.peakMiB,
    rssGrowthMiB: figures.growthMiB,
    wallMs: Date.now() - started,
    note: `published in ${publishedMs} ms with ${backlog} not yet handled`,
  });
  expect(lost, 'resolved publishes never delivered').toBe(0);
  expect(rejected, 'publishes rejected (publish should wait, not fail)').toBe(0);
  expect(figures.growthMiB, 'RSS growth over the start, MiB').toBeLessThan(
    env.options.floodRssBudgetMiB ?? 200,
  );
}
