import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { createQueueManager, type Message, type QueueManager, registerDriver } from '@plugmq/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CLAIM_CHECK_HEADERS,
  type ClaimCheckOptions,
  filesystemPayloadStore,
  type PayloadStore,
  withClaimCheck,
} from '../src/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
beforeAll(() => registerDriver(memoryDriver));
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plugmq-cc-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(options: Partial<ClaimCheckOptions> = {}) {
  const directory = await tempDir();
  const store = filesystemPayloadStore({ directory });
  const raw = await createQueueManager({ driver: 'memory' });
  cleanups.push(() => raw.close());
  const queue = withClaimCheck(raw, { store, thresholdBytes: 1024, ...options });
  return { queue, store, directory, raw };
}

function received<T>(queue: QueueManager, type: string, group: string, failFirst = 0) {
  const messages: Message<T>[] = [];
  let failures = 0;
  const waiters: (() => void)[] = [];
  const ready = queue.consume<T>(
    type,
    async (message) => {
      if (failures < failFirst) {
        failures++;
        throw new Error('first attempt fails');
      }
      messages.push(message);
      for (const wake of waiters.splice(0)) wake();
    },
    { group, retry: { maxAttempts: 2, initialDelayMs: 5 } },
  );
  const next = async (count: number) => {
    for (let i = 0; i < 400 && messages.length < count; i++) {
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 25);
      });
    }
    expect(messages.length).toBeGreaterThanOrEqual(count);
    return messages;
  };
  return { ready, next, messages };
}

describe('withClaimCheck on the memory driver', () => {
  it('leaves bodies under the threshold in the message', async () => {
    const { queue, directory } = await setup();
    const got = received<{ text: string }>(queue, 'cc.small', 'g');
    await got.ready;
    await queue.publish('cc.small', { text: 'x'.repeat(900) });
    const [message] = await got.next(1);
    expect(message?.body.text).toHaveLength(900);
    expect(message?.headers[CLAIM_CHECK_HEADERS.ref]).toBeUndefined();
    expect(await readdir(directory)).toEqual([]);
  });

  it('stores a body over the threshold and hands the handler the original', async () => {
    const { queue, store, directory } = await setup();
    const got = received<{ text: string }>(queue, 'cc.big', 'g');
    await got.ready;
    const body = { text: 'é'.repeat(5_000) };
    await queue.publish('cc.big', body, { headers: { mine: 'kept' } });
    const [message] = await got.next(1);
    expect(message?.body).toEqual(body);
    expect(message?.headers.mine).toBe('kept');
    const ref = message?.headers[CLAIM_CHECK_HEADERS.ref] as string;
    expect(await readdir(directory)).toEqual([ref]);
    expect(Buffer.from((await store.get(ref)) as Uint8Array).toString()).toBe(JSON.stringify(body));
    expect(message?.headers[CLAIM_CHECK_HEADERS.bytes]).toBe(String(Buffer.byteLength(JSON.stringify(body))));
  });

  it('hands raw bytes back as bytes', async () => {
    const { queue } = await setup();
    const bytes = new Uint8Array(4096).map((_, i) => i % 251);
    const got = received<Uint8Array>(queue, 'cc.bytes', 'g');
    await got.ready;
    await queue.publish('cc.bytes', bytes);
    const [message] = await got.next(1);
    expect(message?.body).toBeInstanceOf(Uint8Array);
    expect(Buffer.compare(Buffer.from(message?.body as Uint8Array), Buffer.from(bytes))).toBe(0);
  });

  it('honours a per-type threshold and `false`', async () => {
    const { queue, directory } = await setup({
      types: { 'cc.never': { thresholdBytes: false }, 'cc.tiny': { thresholdBytes: 10 } },
    });
    const never = received<string>(queue, 'cc.never', 'g');
    const tiny = received<string>(queue, 'cc.tiny', 'g');
    await Promise.all([never.ready, tiny.ready]);
    await queue.publishBatch([
      { type: 'cc.never', body: 'n'.repeat(5_000) },
      { type: 'cc.tiny', body: 'twenty characters!!' },
    ]);
    const [n] = await never.next(1);
    const [t] = await tiny.next(1);
    expect(n?.headers[CLAIM_CHECK_HEADERS.ref]).toBeUndefined();
    expect(t?.headers[CLAIM_CHECK_HEADERS.ref]).toBeDefined();
    expect(t?.body).toBe('twenty characters!!');
    expect(await readdir(directory)).toHaveLength(1);
  });

  it('keeps the payload through a retry and a dead letter, and a replay finds it', async () => {
    const { queue, raw, directory } = await setup({ deleteAfterHandled: true });
    const retried = received<{ n: number[] }>(queue, 'cc.retry', 'g', 1);
    let attempts = 0;
    const failing = queue.consume(
      'cc.fail',
      async () => {
        attempts++;
        throw new Error('always');
      },
      { group: 'g', retry: { maxAttempts: 2, initialDelayMs: 5 } },
    );
    const dead = received<{ n: number[] }>(queue, 'cc.fail.dlq', 'dlq');
    await Promise.all([retried.ready, failing, dead.ready]);
    const body = { n: Array.from({ length: 2_000 }, (_, i) => i) };
    await queue.publish('cc.retry', body);
    await queue.publish('cc.fail', body);
    const [ok] = await retried.next(1);
    expect(ok?.attempt).toBe(2);
    expect(ok?.body).toEqual(body);
    const [letter] = await dead.next(1);
    expect(attempts).toBe(2);
    expect(letter?.body).toEqual(body);
    const ref = letter?.headers[CLAIM_CHECK_HEADERS.ref] as string;
    // Handled once: the retried message's payload is gone; the dead letter's is not.
    expect(await readdir(directory)).toEqual([ref]);
    // A replay as `plugmq dlq replay` does it: the stub and headers go back to the original type.
    const replayed = received<{ n: number[] }>(queue, 'cc.replay', 'g');
    await replayed.ready;
    const headers = Object.fromEntries(
      Object.entries(letter?.headers ?? {}).filter(
        ([name]) => !name.startsWith('x-plugmq-') || name.startsWith('x-plugmq-claim'),
      ),
    );
    await raw.publish('cc.replay', { stub: true }, { headers });
    const [again] = await replayed.next(1);
    expect(again?.body).toEqual(body);
    // The delete follows the handler's return: poll for it.
    for (let i = 0; i < 100 && (await readdir(directory)).length > 0; i++) await sleep(10);
    expect(await readdir(directory)).toEqual([]);
  });

  it('dead-letters a message whose payload is gone, saying so', async () => {
    const directory = await tempDir();
    const raw = await createQueueManager({ driver: 'memory' });
    cleanups.push(() => raw.close());
    // Started before withClaimCheck: this consumer sees the stub and the headers as they travel.
    const dead = received<unknown>(raw, 'cc.gone.dlq', 'dlq');
    await dead.ready;
    // A store that lost the payload (expired, or removed by hand) before the delivery.
    const fs = filesystemPayloadStore({ directory });
    const store: PayloadStore = { ...fs, get: async () => undefined };
    const queue = withClaimCheck(raw, { store, thresholdBytes: 1024 });
    const handled: unknown[] = [];
    await queue.consume('cc.gone', (m) => void handled.push(m), { group: 'g', retry: { maxAttempts: 1 } });
    await queue.publish('cc.gone', { big: 'x'.repeat(2_000) });
    const files = await readdir(directory);
    expect(files).toHaveLength(1);
    const [letter] = await dead.next(1);
    expect(handled).toEqual([]);
    expect(letter?.body).toMatchObject({ claimCheck: files[0], bytes: 2_010 });
    expect(letter?.headers['x-plugmq-error']).toMatch(/payload .* is not in the store/);
  });

  it('refuses a bad store or threshold, and a store key that could leave its directory', async () => {
    const raw = await createQueueManager({ driver: 'memory' });
    cleanups.push(() => raw.close());
    expect(() => withClaimCheck(raw, {} as ClaimCheckOptions)).toThrow(
      /options.store must be a PayloadStore/,
    );
    const store = filesystemPayloadStore({ directory: await tempDir() });
    expect(() => withClaimCheck(raw, { store, thresholdBytes: -1 })).toThrow(/thresholdBytes must be/);
    await expect(store.get('../etc/passwd')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('fails the publish with PUBLISH_FAILED when the store refuses, sending nothing', async () => {
    const raw = await createQueueManager({ driver: 'memory' });
    cleanups.push(() => raw.close());
    const broken: PayloadStore = {
      put: async () => {
        throw new Error('disk full');
      },
      get: async () => undefined,
      delete: async () => undefined,
    };
    const queue = withClaimCheck(raw, { store: broken, thresholdBytes: 10 });
    const handled: unknown[] = [];
    await queue.consume('cc.broken', (m) => void handled.push(m), { group: 'g' });
    await expect(queue.publish('cc.broken', 'x'.repeat(100))).rejects.toMatchObject({
      code: 'PUBLISH_FAILED',
      message: expect.stringMatching(/disk full; nothing was sent/),
    });
    await sleep(50);
    expect(handled).toEqual([]);
  });
  it('removes the payloads a batch stored when another of its puts failed', async () => {
    const directory = await tempDir();
    const fs = filesystemPayloadStore({ directory });
    const store: PayloadStore = {
      ...fs,
      // The second body's put fails at once, while the first one's is still writing its file.
      put: async (key, bytes, options) => {
        if (bytes.byteLength > 3_000) throw new Error('quota exceeded');
        await fs.put(key, bytes, options);
      },
    };
    const raw = await createQueueManager({ driver: 'memory' });
    cleanups.push(() => raw.close());
    const queue = withClaimCheck(raw, { store, thresholdBytes: 1024 });
    await expect(
      queue.publishBatch([
        { type: 'cc.batch', body: 'a'.repeat(2_000) },
        { type: 'cc.batch', body: 'b'.repeat(4_000) },
      ]),
    ).rejects.toMatchObject({ code: 'PUBLISH_FAILED', message: expect.stringMatching(/quota exceeded/) });
    expect(await readdir(directory)).toEqual([]);
  });

  it('hands a batch handler the original bodies', async () => {
    const { queue } = await setup();
    const bodies: string[] = [];
    await queue.consumeBatch<{ text: string }>(
      'cc.batch',
      async (messages) => {
        for (const message of messages) bodies.push(message.body.text);
      },
      { group: 'g', maxBatchSize: 10, maxWaitMs: 20 },
    );
    const big = 'b'.repeat(4096);
    await queue.publish('cc.batch', { text: big });
    await queue.publish('cc.batch', { text: 'small' });
    for (let i = 0; i < 200 && bodies.length < 2; i++) await sleep(10);
    expect(bodies.sort()).toEqual([big, 'small'].sort());
  });
});

describe('filesystemPayloadStore', () => {
  it('round-trips, deletes, and sweeps expired payloads on a later put', async () => {
    const directory = await tempDir();
    const store = filesystemPayloadStore({ directory, sweepIntervalMs: 0 });
    await store.put('a', Buffer.from('one'), { ttlMs: 60_000 });
    expect(Buffer.from((await store.get('a')) as Uint8Array).toString()).toBe('one');
    await store.delete('a');
    await store.delete('a');
    expect(await store.get('a')).toBeUndefined();
    await store.put('old', Buffer.from('x'), { ttlMs: 60_000 });
    await utimes(join(directory, 'old'), new Date(0), new Date(0));
    await store.put('new', Buffer.from('y'), { ttlMs: 60_000 });
    expect(await readdir(directory)).toEqual(['new']);
  });
});
