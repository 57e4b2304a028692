import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createQueueManager, registerDriver } from '@plugmq/core';
import {
  type BrokerHandle,
  coreAliases,
  startBroker,
  uniqueGroup,
  uniqueType,
  waitFor,
} from '@plugmq/testkit';
import { build } from 'tsup';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

const here = fileURLToPath(new URL('.', import.meta.url));
const MESSAGES = 40;

let broker: BrokerHandle | undefined;
let outDir: string | undefined;
let child: ChildProcess | undefined;
/** The child consumer, bundled from its TypeScript source (with the driver's sources) for plain node. */
let childScript: string;
beforeAll(async () => {
  broker = await startBroker('redis');
  outDir = await mkdtemp(join(tmpdir(), 'plugmq-redis-child-'));
  await build({
    entry: { 'consumer-child': join(here, 'fixtures/consumer-child.ts') },
    outDir,
    format: ['cjs'],
    platform: 'node',
    target: 'node20',
    noExternal: [/.*/],
    silent: true,
    config: false,
    esbuildOptions(options) {
      options.alias = coreAliases(join(here, '../../core/src/index.ts'));
    },
  });
  childScript = join(outDir, 'consumer-child.cjs');
}, 180_000);
afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await broker?.stop();
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

test('a consumer process killed with SIGKILL: its pending messages reach another consumer of the group', async () => {
  const url = broker?.url as string;
  const keyPrefix = `plugmq-kill-${process.pid}`;
  const type = uniqueType('kill');
  const group = uniqueGroup('kill');
  const started = new Set<number>();
  let ready = false;
  child = fork(childScript, [url, type, group, keyPrefix], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', (message: { ready?: boolean; started?: number }) => {
    if (message.ready) ready = true;
    if (typeof message.started === 'number') started.add(message.started);
  });
  await waitFor(() => ready, 30_000, 'the child consumer to be live');

  const producer = await createQueueManager({ driver: 'redis', url, keyPrefix });
  for (let n = 0; n < MESSAGES; n++) await producer.publish(type, n);
  // The child holds 4 running handlers (and up to its prefetch of 8 entries) forever.
  await waitFor(() => started.size === 4, 10_000, 'the child to start 4 handlers');
  const killedAt = Date.now();
  child.kill('SIGKILL');
  await new Promise((resolve) => child?.once('exit', resolve));

  const survivor = await createQueueManager({
    driver: 'redis',
    url,
    keyPrefix,
    claimMinIdleMs: 1_000,
    claimIntervalMs: 200,
  });
  const attempts = new Map<number, number[]>();
  await survivor.consume<number>(
    type,
    (message) => {
      attempts.set(message.body, [...(attempts.get(message.body) ?? []), message.attempt]);
    },
    { group, concurrency: 4 },
  );
  await waitFor(() => attempts.size === MESSAGES, 20_000, 'every message to reach the surviving consumer');
  const recoveredAfterMs = Date.now() - killedAt;
  for (const n of started) {
    expect(attempts.get(n), `message ${n}, started by the killed consumer`).toEqual([2]);
  }
  const duplicates = [...attempts.values()].filter((list) => list.length > 1).length;
  console.log(
    `redis SIGKILL test: ${started.size} handlers running in the killed process, all ${MESSAGES} messages ` +
      `handled by the survivor within ${recoveredAfterMs} ms of the kill, ${duplicates} handled twice there`,
  );
  expect(duplicates).toBe(0);
  await survivor.close();
  await producer.close();
}, 60_000);
