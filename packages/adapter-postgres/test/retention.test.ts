import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { joinMidStream, type PostgresHandle, startPostgres, waitFor } from '@plugmq/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { driver } from '../src/index.js';

// What only this driver has: the retained table behind startFrom 'earliest' (exact under
// concurrent publishing, trimmed after retentionMs) and ordering by key across consumers.

registerDriver(driver);

let server: PostgresHandle | undefined;
beforeAll(async () => {
  server = await startPostgres();
}, 180_000);
afterAll(() => server?.stop());

const schema = `plugmq_retention_${process.pid}`;
const managers: QueueManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});

async function manager(overrides: Record<string, unknown> = {}): Promise<QueueManager> {
  const created = await createQueueManager({ driver: 'postgres', url: server?.url, schema, ...overrides });
  managers.push(created);
  return created;
}

let unique = 0;
const name = (prefix: string) => `${prefix}-${process.pid}-${++unique}`;

describe('postgres retention', () => {
  it("without retentionMs a new group cannot start from 'earliest' (UNSUPPORTED); with it, it can", async () => {
    const plain = await manager();
    expect(plain.capabilities.newGroupReceivesOldMessages).toBe(false);
    expect(plain.capabilities.orderedByKey).toBe(true);
    await expect(
      plain.consume(name('t'), () => {}, { group: 'g', startFrom: 'earliest' }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
    expect((await manager({ retentionMs: 1_000 })).capabilities.newGroupReceivesOldMessages).toBe(true);
  });

  it('a group joining from earliest mid-stream gets every message once: the retained ones and the later ones', async () => {
    const producer = await manager({ retentionMs: 60_000 });
    const consumer = await manager({ retentionMs: 60_000 });
    const seen = await joinMidStream(producer, consumer, { type: name('replay') });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([...seen.values()].filter((times) => times > 1)).toEqual([]);
  }, 60_000);

  it('retained messages older than retentionMs are trimmed: a later group does not get them', async () => {
    const producer = await manager({ retentionMs: 1_000 });
    const type = name('trim');
    await producer.publish(type, 'old');
    // Trimming runs every second (a quarter of retentionMs, at least 1 s).
    await new Promise((resolve) => setTimeout(resolve, 2_600));
    await producer.publish(type, 'new');
    const got: string[] = [];
    await producer.consume<string>(type, (message) => void got.push(message.body), {
      group: 'after-trim',
      startFrom: 'earliest',
    });
    await waitFor(() => got.length >= 1, 10_000, 'the new message');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(got).toEqual(['new']);
    const client = new pg.Client({ connectionString: server?.url });
    await client.connect();
    const kept = await client.query(`SELECT count(*)::int AS n FROM ${schema}.retained WHERE type = $1`, [
      type,
    ]);
    await client.end();
    expect(kept.rows[0]?.n).toBe(1);
  });
});

describe('postgres ordering by key', () => {
  it('two consumers of one group: a key is never handled by both at once, and in publish order', async () => {
    const producer = await manager();
    const type = name('keyed');
    const group = 'ordered';
    const handled = new Map<string, number[]>();
    const running = new Set<string>();
    const overlaps: string[] = [];
    const handler = async (message: { body: { key: string; seq: number } }) => {
      const { key, seq } = message.body;
      if (running.has(key)) overlaps.push(`${key}#${seq}`);
      running.add(key);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
      handled.set(key, [...(handled.get(key) ?? []), seq]);
      running.delete(key);
    };
    for (const consumer of [await manager(), await manager()]) {
      await consumer.consume(type, handler, { group, concurrency: 8 });
    }
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const perKey = 40;
    // Pipelined: a key's publishes are still written in call order.
    await Promise.all(
      Array.from({ length: perKey * keys.length }, (_, i) => {
        const key = keys[i % keys.length] ?? 'a';
        return producer.publish(type, { key, seq: Math.floor(i / keys.length) }, { key });
      }),
    );
    await waitFor(
      () => [...handled.values()].reduce((sum, seqs) => sum + seqs.length, 0) === perKey * keys.length,
      30_000,
      'every message',
    );
    expect(overlaps).toEqual([]);
    for (const key of keys) {
      expect(handled.get(key), `order of ${key}`).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
  }, 60_000);
});
