import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { driver as kafkaDriver } from '@plugmq/adapter-kafka';
import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { driver as rabbitDriver } from '@plugmq/adapter-rabbitmq';
import { driver as redisDriver } from '@plugmq/adapter-redis';
import {
  createQueueManager,
  DEAD_LETTER_HEADERS,
  type Message,
  type QueueManager,
  registerDriver,
} from '@plugmq/core';
import { type BrokerHandle, describeWithBroker } from '@plugmq/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { CLAIM_CHECK_HEADERS, filesystemPayloadStore, withClaimCheck } from '../src/index.js';

for (const driver of [memoryDriver, redisDriver, rabbitDriver, kafkaDriver]) registerDriver(driver);

// Kafka's group timings shortened as in the adapter's own tests, so joins take seconds, not tens.
const KAFKA_OPTIONS = {
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 500,
  rebalanceTimeoutMs: 10_000,
  maxWaitTimeMs: 50,
};
const MiB = 1024 * 1024;
/** Each driver's default maxMessageBytes, the broker's own default limit. */
const DEFAULT_LIMITS = { redis: 512 * MiB, rabbitmq: 128 * MiB, kafka: 1_048_588 } as const;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const DLQ_HEADERS = new Set<string>(Object.values(DEAD_LETTER_HEADERS));
const digest = (text: string) => createHash('sha256').update(text).digest('hex');

async function open(config: Record<string, unknown>): Promise<QueueManager> {
  const queue = await createQueueManager(config as never);
  cleanups.push(() => queue.close());
  return queue;
}

/** Polls until `ready()` or about `ms`; the assertion after it says what was missing. */
async function until(ready: () => boolean, ms: number): Promise<void> {
  for (let waited = 0; waited < ms && !ready(); waited += 50) await new Promise((r) => setTimeout(r, 50));
}

interface Big {
  readonly id: string;
  readonly data: string;
}

/**
 * A 20 MiB JSON body (base64 of random bytes, so nothing compresses it) through claim-check:
 * one message fails its first attempt and succeeds on the retry, the other fails both attempts
 * and is dead-lettered; both handlers see the whole body, and the dead letter keeps its payload,
 * so replaying it (stub and headers back to a type, as `plugmq dlq replay` does) delivers it whole.
 */
function roundTrip(config: () => Record<string, unknown>, timeScale: number): void {
  it(
    'round-trips a 20 MiB body, retried once and dead-lettered once',
    { timeout: 120_000 * timeScale },
    async () => {
      const directory = await mkdtemp(join(tmpdir(), 'plugmq-cc-'));
      cleanups.push(() => rm(directory, { recursive: true, force: true }));
      const queue = withClaimCheck(await open(config()), { store: filesystemPayloadStore({ directory }) });
      const type = `cc.big.${Date.now().toString(36)}`;
      const data = randomBytes(15 * MiB).toString('base64');
      expect(data.length).toBe(20 * MiB);
      const handled: Message<Big>[] = [];
      const dead: Message<Big>[] = [];
      const replayed: Message<Big>[] = [];
      await queue.consume<Big>(
        type,
        (message) => {
          if (message.body.id === 'dead' || message.attempt === 1)
            throw new Error(`refused ${message.body.id}`);
          handled.push(message);
        },
        { group: 'cc', retry: { maxAttempts: 2, initialDelayMs: 50 } },
      );
      await queue.consume<Big>(`${type}.dlq`, (message) => void dead.push(message), { group: 'cc-dlq' });
      await queue.consume<Big>(`${type}.replayed`, (message) => void replayed.push(message), {
        group: 'cc-replay',
      });
      await queue.publish(type, { id: 'retried', data });
      await queue.publish(type, { id: 'dead', data });
      await until(() => handled.length >= 1 && dead.length >= 1, 60_000 * timeScale);
      expect(handled.map((m) => [m.body.id, m.attempt])).toEqual([['retried', 2]]);
      expect(dead.map((m) => [m.body.id, m.headers['x-plugmq-attempts']])).toEqual([['dead', '2']]);
      const letter = dead[0] as Message<Big>;
      const headers = Object.fromEntries(
        Object.entries(letter.headers).filter(([name]) => !DLQ_HEADERS.has(name)),
      );
      // What the dead-letter type holds on the wire is the stub: that is what a replay republishes.
      await queue.publish(`${type}.replayed`, { claimCheck: headers[CLAIM_CHECK_HEADERS.ref] }, { headers });
      await until(() => replayed.length >= 1, 30_000 * timeScale);
      expect(replayed.map((m) => m.body.id)).toEqual(['dead']);
      for (const message of [...handled, ...dead, ...replayed]) {
        expect(digest(message.body.data)).toBe(digest(data));
      }
      // Retention, not delete-on-settle, by default: both payloads are still in the store.
      expect(await readdir(directory)).toHaveLength(2);
    },
  );
}

describe('claim-check on memory', () => {
  roundTrip(() => ({ driver: 'memory' }), 1);
});

for (const kind of ['redis', 'rabbitmq', 'kafka'] as const) {
  const timeScale = kind === 'kafka' ? 2 : 1;
  await describeWithBroker(kind, `claim-check on ${kind}`, (broker: () => BrokerHandle) => {
    const config = () => ({
      driver: kind,
      url: broker().url,
      ...(kind === 'kafka' ? KAFKA_OPTIONS : {}),
    });
    roundTrip(config, timeScale);

    it(`without claim-check refuses a body over the default ${DEFAULT_LIMITS[kind]}-byte limit up front`, async () => {
      const queue = await open(config());
      // Not zero-filled and never written: the pages stay unmapped, so even 512 MiB costs little.
      const body = Buffer.allocUnsafeSlow(DEFAULT_LIMITS[kind] + 1);
      const refused = queue.publish(`cc.limit.${kind}`, body);
      await expect(refused).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining(
          `over the ${kind} limit of ${DEFAULT_LIMITS[kind]} bytes (option maxMessageBytes)`,
        ),
      });
    });
  });
}
