import type { Message } from '@plugmq/core';
import { expect, it } from 'vitest';
import { deferred, sleep, uniqueGroup, uniqueType, waitFor, withTimeout } from '../conformance/helpers.js';
import { bundleChildConsumer, ChildConsumer } from './child.js';
import type { FaultEnv } from './env.js';
import { DeliveryLedger, publishStream } from './stream.js';

// Scenarios 3 and 7: a consumer goes away, once without warning (SIGKILL of a real process), once
// politely (close() with handlers running). Either way the group must still get every message the
// departed consumer had not finished.

/** Keys of scenario 3's stream where the driver orders by key. */
const KEYS = 8;

export function processScenarios(env: FaultEnv): void {
  const killReason =
    env.skipReason('consumerKill', true) ??
    (env.options.driverModule ? undefined : 'no driverModule given for the child process');
  const killTitle =
    '3. a consumer process SIGKILLed mid-stream: another consumer of the group receives everything it had not finished (each key in publish order where the driver orders by key)';
  if (killReason) it.skip(`${killTitle} [does not apply: ${killReason}]`, () => {});
  else it(killTitle, () => consumerKill(env), 300_000);

  const persistent = env.options.driver.capabilities.persistent;
  const closeTitle = persistent
    ? '7. close() with handlers in flight resolves after they finish, none starts after, a new manager gets the rest'
    : '7. close() with handlers in flight resolves after they finish, none starts after [a new manager getting the rest does not apply: not persistent]';
  const closeReason = env.skipReason('close', false);
  if (closeReason) it.skip(`${closeTitle} [does not apply: ${closeReason}]`, () => {});
  else it(closeTitle, () => closeInFlight(env, persistent), 300_000);
}

async function consumerKill(env: FaultEnv): Promise<void> {
  const bundle = await bundleChildConsumer(env.options.driverModule as string, env.options.coreEntry);
  try {
    const type = uniqueType('sigkill');
    const group = uniqueGroup('sigkill');
    // A logger (functions) cannot cross to the child as JSON; the child takes FAULT_LOG's own.
    const { logger: _logger, ...config } = env.config();
    const child = await ChildConsumer.start(bundle, {
      config,
      type,
      group,
      concurrency: 4,
      handleMs: 20,
    });
    const producer = await env.manager();
    const ledger = new DeliveryLedger();
    const count = 400;
    // Where the driver orders by key, the stream is keyed: the child dies holding keys (leases,
    // partitions), and the survivor must still get each key's messages in publish order.
    const ordered = producer.capabilities.orderedByKey;
    const keyOf = (index: number) => `k${index % KEYS}`;
    await publishStream({
      manager: producer,
      type,
      count,
      ledger,
      concurrency: 20,
      ...(ordered ? { key: keyOf } : {}),
    });
    // Mid-stream: some finished, some running, the rest still on the broker or in the prefetch.
    await waitFor(
      () => child.done.size >= 40 && child.unfinished().length >= 2,
      60_000,
      'the child to finish 40 messages and be running more',
    );
    const unfinished = child.unfinished().length;
    const killedAt = Date.now();
    await child.kill();
    const doneByChild = new Set(child.done);

    const survivor = await env.manager();
    const survivorOrder: number[] = [];
    await survivor.consume(
      type,
      (message: Message<unknown>) => {
        survivorOrder.push(message.body as number);
        ledger.handler(message);
      },
      { group, concurrency: 8 },
    );
    const owed = () => [...ledger.resolved].filter((id) => !doneByChild.has(id) && !ledger.delivered.has(id));
    await waitFor(() => owed().length === 0, 120_000, 'the survivor to get every unfinished message').catch(
      () => {},
    );
    const firstAt = ledger.firstDeliveryAfter(killedAt);
    const twice =
      [...ledger.delivered.keys()].filter((id) => doneByChild.has(id)).length + ledger.duplicates();
    env.figures.add({
      driver: env.options.name,
      scenario: '3 consumer SIGKILL',
      messages: count,
      resolved: ledger.resolved.size,
      rejected: ledger.rejected.size,
      lost: owed().length,
      duplicates: twice,
      recoveryMs: firstAt === undefined ? undefined : firstAt - killedAt,
      note: `child finished ${doneByChild.size}, had ${unfinished} running at the kill`,
    });
    expect(ledger.resolved.size).toBe(count);
    expect(owed(), 'messages the killed consumer never finished and the survivor never got').toEqual([]);
    if (ordered) {
      for (let k = 0; k < KEYS; k++) {
        // First deliveries only: a redelivered duplicate may repeat an index.
        const seen = [...new Set(survivorOrder.filter((index) => index % KEYS === k))];
        expect(seen, `the survivor's order of ${keyOf(k)}`).toEqual([...seen].sort((a, b) => a - b));
      }
    }
  } finally {
    await bundle.remove();
  }
}

async function closeInFlight(env: FaultEnv, persistent: boolean): Promise<void> {
  const type = uniqueType('close');
  const group = uniqueGroup('close');
  const first = await env.manager();
  const gate = deferred();
  const started: string[] = [];
  const finished = new Set<string>();
  let closeCalledAt = 0;
  let startedAfterClose = 0;
  await first.consume(
    type,
    async (message: Message<unknown>) => {
      if (closeCalledAt > 0) startedAfterClose++;
      started.push(message.id);
      await gate.promise;
      finished.add(message.id);
    },
    { group, concurrency: 4 },
  );
  const producer = await env.manager();
  const ledger = new DeliveryLedger();
  const count = 40;
  await publishStream({ manager: producer, type, count, ledger, concurrency: 10 });
  await waitFor(() => started.length >= 4, 30_000, '4 handlers in flight');
  closeCalledAt = Date.now();
  let closed = false;
  const closing = first.close().then(() => {
    closed = true;
  });
  await sleep(300);
  const closedEarly = closed;
  const inFlight = started.length - finished.size;
  gate.resolve();
  await withTimeout(closing, 60_000, 'close() with handlers in flight');
  const finishedAtClose = finished.size;
  const startedAtClose = started.length;
  await sleep(500);

  let lost: number | undefined;
  if (persistent) {
    // The rest (fetched-but-unstarted ones were handed back) go to a new manager of the group.
    const second = await env.manager();
    for (const id of finished) ledger.record(id);
    await second.consume(type, ledger.handler, { group, concurrency: 8 });
    await ledger.settle(60_000);
    lost = ledger.lost().length;
  }
  env.figures.add({
    driver: env.options.name,
    scenario: '7 close in flight',
    messages: count,
    resolved: ledger.resolved.size,
    lost,
    duplicates: persistent ? ledger.duplicates() : undefined,
    note: `${inFlight} in flight at close(); ${startedAfterClose} started after close()`,
  });
  expect(closedEarly, 'close() waited for the running handlers').toBe(false);
  expect(finishedAtClose, 'every started handler finished before close() resolved').toBe(startedAtClose);
  expect(startedAfterClose, 'handlers started after close() was called').toBe(0);
  expect(started.length, 'no handler started after close() resolved').toBe(startedAtClose);
  if (persistent) expect(ledger.lost(), 'messages the new manager never got').toEqual([]);
}
