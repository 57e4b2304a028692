#!/usr/bin/env node
// pnpm demo — the seeds' scenario, step by step, on whichever driver the environment names
// (PLUGMQ_DRIVER, PLUGMQ_URL; memory by default). The application code is the same on every driver.
import { configFromEnv, createContainer, PlugmqError, redactCredentials, TYPES } from '@plugmq/core/driver';

const started = Date.now();
const say = (step, text) =>
  console.log(`${String(Date.now() - started).padStart(5)} ms  ${step.padEnd(10)} ${text}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Waits until `check()` holds, at most `ms`, so the demo always ends. */
async function until(check, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(20);
  return check();
}

const config = configFromEnv();
const run = Date.now().toString(36); // fresh groups per run, so durable brokers start clean
say('config', `driver=${config.driver}${config.url ? ` url=${redactCredentials(config.url)}` : ''}`);
const container = await createContainer(config);
const queue = container.get(TYPES.QueueManager);
const consumers = container.get(TYPES.ConsumerManager);
say('connect', `capabilities ${JSON.stringify(queue.capabilities)}`);

// 1. Three competing workers in one group share the orders; 2. an audit group gets every one.
const perWorker = { 'worker-1': 0, 'worker-2': 0, 'worker-3': 0 };
let audited = 0;
for (const name of Object.keys(perWorker)) {
  consumers.register({
    types: ['demo.orders'],
    group: `fulfilment-${run}`,
    async handle(message) {
      perWorker[name]++;
      say('work', `${name} packs order #${message.body.order} (attempt ${message.attempt})`);
      await sleep(30);
    },
  });
}
consumers.register({
  types: ['demo.orders'],
  group: `audit-${run}`,
  async handle(message) {
    audited++;
    say('audit', `audit log: order #${message.body.order} id=${message.id.slice(0, 8)}…`);
  },
});

// 3. A payment handler that always fails: retried with back-off, then dead-lettered.
consumers.register({
  types: ['demo.payments'],
  group: `payments-${run}`,
  options: { retry: { maxAttempts: 3, initialDelayMs: 200, factor: 2 } },
  async handle(message) {
    say('payment', `charging ${message.body.amount} € fails (attempt ${message.attempt} of 3)`);
    throw new Error('card declined');
  },
});
let deadLettered;
consumers.register({
  types: ['demo.payments.dlq'],
  group: `ops-${run}`,
  async handle(message) {
    deadLettered = message;
    say(
      'dlq',
      `dead letter: ${message.headers['x-plugmq-error']} after ${message.headers['x-plugmq-attempts']} attempts (from ${message.headers['x-plugmq-original-type']})`,
    );
  },
});

// 4. Delayed and prioritised messages.
const notices = [];
consumers.register({
  types: ['demo.notices'],
  group: `notices-${run}`,
  async handle(message) {
    notices.push(message.body.text);
    say('notice', `${message.body.text}`);
    await sleep(50);
  },
});

await consumers.startAll();
say('start', 'all consumers live (startAll resolved)');

for (let order = 1; order <= 9; order++) await queue.publish('demo.orders', { order });
say('publish', '9 orders published');
await until(() => audited === 9 && Object.values(perWorker).reduce((a, b) => a + b, 0) === 9);
say(
  'shared',
  `work split between competing workers: ${JSON.stringify(perWorker)}; audit saw ${audited}/9 (fan-out)`,
);

// Request/reply round trip.
if (queue.capabilities.requestReply) {
  const responder = await queue.respond('demo.quote', (message) => ({ total: message.body.items * 4.5 }), {
    group: `pricing-${run}`,
  });
  const quote = await queue.request('demo.quote', { items: 3 }, { timeoutMs: 10_000 });
  say('request', `asked for a quote of 3 items, got ${JSON.stringify(quote)}`);
  await responder.close();
}

await queue.publish('demo.payments', { amount: 42 });
await until(() => deadLettered !== undefined);

// Delayed: published first, delivered last.
try {
  await queue.publish(
    'demo.notices',
    { text: 'delayed 600 ms: published first, arrives after the others' },
    { delayMs: 600 },
  );
  say('delay', 'published a notice delayed by 600 ms');
} catch (error) {
  if (!(error instanceof PlugmqError && error.code === 'UNSUPPORTED')) throw error;
  say('delay', `${config.driver} refuses delayMs (UNSUPPORTED): ${error.message}`);
}
// Priority: while the consumer is busy with a first notice, a low and a high one wait; high goes first.
try {
  await queue.publish('demo.notices', { text: 'first notice keeps the consumer busy' }, { priority: 0 });
  await sleep(10);
  await queue.publish('demo.notices', { text: 'low priority (1)' }, { priority: 1 });
  await queue.publish(
    'demo.notices',
    { text: 'high priority (9), published after the low one' },
    { priority: 9 },
  );
  say('priority', 'published low (1) then high (9) priority notices');
} catch (error) {
  if (!(error instanceof PlugmqError && error.code === 'UNSUPPORTED')) throw error;
  say('priority', `${config.driver} refuses priority (UNSUPPORTED): ${error.message}`);
  await queue.publish('demo.notices', { text: 'a plain notice' });
}
await until(() => notices.some((text) => text.startsWith('delayed')) || !queue.capabilities.delay, 10_000);

// A clean stop: in-flight handlers finish first.
await queue.publish('demo.orders', { order: 10 });
await sleep(5);
await consumers.stopAll();
say('stop', 'stopAll resolved: every in-flight handler finished');
const health = await queue.health();
say('health', JSON.stringify(health));
await queue.close();
say('done', 'closed');
