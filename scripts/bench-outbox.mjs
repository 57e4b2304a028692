// `pnpm bench --scenarios outbox`: the outbox relay scenario (packages/outbox/bench/bench.mjs), one row per
// relay count. PostgreSQL comes from the testkit (PLUGMQ_POSTGRES_URL, a container or a local server).
import { round } from './bench-lib.mjs';

export async function benchOutbox({ driver, messages, url, json }) {
  const count = messages ? Number(messages) : 20_000;
  if (!Number.isInteger(count) || count < 1) {
    console.error(`bench: --messages must be a positive integer (got ${messages})`);
    process.exit(2);
  }
  const { run } = await import(new URL('../packages/outbox/bench/bench.mjs', import.meta.url).href);
  if (!json) process.stderr.write(`outbox relay → ${driver}: ${count} messages…\n`);
  const results = await run({
    messages: count,
    driver,
    url: url ?? process.env[`PLUGMQ_${driver.toUpperCase()}_URL`],
  });
  const rows = results.map((r) => ({
    driver,
    scenario: `outbox-relays-${r.relays}`,
    messages: count,
    postgres: r.source,
    msgsPerSec: Math.round(r.relay.msgsPerSec),
    cpuUsPerMsg: r.relay.cpuUsPerMsg,
    baselineMsgsPerSec: Math.round(r.baseline.msgsPerSec),
    baselineCpuUsPerMsg: r.baseline.cpuUsPerMsg,
    ratio: round(r.relay.msgsPerSec / r.baseline.msgsPerSec),
  }));
  if (json) for (const row of rows) console.log(JSON.stringify(row));
  else
    console.table(
      rows.map((r) => ({
        scenario: r.scenario,
        messages: r.messages,
        'msgs/s': r.msgsPerSec,
        'CPU µs/msg': r.cpuUsPerMsg,
        'baseline msgs/s': r.baselineMsgsPerSec,
        'baseline CPU µs/msg': r.baselineCpuUsPerMsg,
        ratio: r.ratio,
      })),
    );
}
