import { driver as memory } from '@plugmq/adapter-memory';
import { createQueueManager, type QueueManager, registerDriver } from '@plugmq/core';
import { collector, uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createOutbox, type OutboxRelay } from '../src/index.js';
import { inTransaction, noPostgres, orderByKey, uniqueTable, usePostgres } from './helpers.js';

registerDriver(memory);

describe.skipIf(noPostgres)(`outbox on PostgreSQL${noPostgres ? ` [skipped: ${noPostgres}]` : ''}`, () => {
  const db = usePostgres();
  let queue: QueueManager;
  const relays: OutboxRelay[] = [];
  beforeEach(async () => {
    queue = await createQueueManager({ driver: 'memory' });
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await queue.close();
  });

  async function setup(keepSent = false) {
    const outbox = createOutbox({ table: uniqueTable() });
    await outbox.migrate(db.pool());
    await db.pool().query(`CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, note text)`);
    return { outbox, keepSent };
  }

  test('a rolled back transaction publishes nothing; a committed one is delivered with id, key, headers and body', async () => {
    const { outbox } = await setup();
    const type = uniqueType('outbox');
    const got = collector<unknown>();
    await queue.consume(type, got.handler, { group: uniqueGroup() });

    await expect(
      inTransaction(db.pool(), async (tx) => {
        await tx.query(`INSERT INTO orders (note) VALUES ('rolled back')`);
        await outbox.publish(tx, type, { n: 'rolled back' }, { key: 'k' });
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');
    const ids = await inTransaction(db.pool(), async (tx) => {
      await tx.query(`INSERT INTO orders (note) VALUES ('committed')`);
      return [
        await outbox.publish(tx, type, { n: 'committed' }, { key: 'k', headers: { tenant: 't1' } }),
        await outbox.publish(tx, type, Buffer.from([0, 1, 2, 255]), { id: 'fixed-id' }),
      ];
    });
    expect(await outbox.counts(db.pool())).toEqual({ pending: 2, sent: 0 });

    const relay = outbox.relay({ pool: db.pool(), queue, pollIntervalMs: 20 });
    relays.push(relay);
    await relay.start();
    await got.waitForCount(2, 10_000);
    await got.expectNoMore(2, 300);
    const byId = new Map(got.messages.map((m) => [m.id, m]));
    expect([...byId.keys()].sort()).toEqual([...ids].sort());
    expect(ids[1]).toBe('fixed-id');
    const json = byId.get(ids[0] as string);
    expect(json?.body).toEqual({ n: 'committed' });
    expect(json?.key).toBe('k');
    expect(json?.headers.tenant).toBe('t1');
    expect(Buffer.from(byId.get('fixed-id')?.body as Uint8Array)).toEqual(Buffer.from([0, 1, 2, 255]));
    await waitFor(async () => (await outbox.counts(db.pool())).pending === 0, 5_000, 'rows deleted');
    expect(relay.stats()).toMatchObject({ running: true, delivered: 2, errors: 0 });
  });

  test('two relays share the work: every message once, in commit order per key', async () => {
    const { outbox } = await setup();
    const type = uniqueType('outbox');
    const got = collector<{ key: string; n: number }>();
    await queue.consume(type, got.handler, { group: uniqueGroup() });
    const KEYS = 12;
    const PER_KEY = 40;
    // Concurrent writers: each transaction publishes one message per key it touches.
    const next = new Map<string, number>();
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < (KEYS * PER_KEY) / 8 / 4; i++) {
          await inTransaction(db.pool(), async (tx) => {
            // Keys in one order in every transaction, as with row locks: the per-key publish locks
            // of two transactions taking keys in opposite orders would deadlock (40P01).
            const keys = [0, 1, 2, 3].map((j) => `k${String((w + i + j) % KEYS).padStart(2, '0')}`).sort();
            for (const key of keys) {
              // The per-key publish lock is held from here to COMMIT, so this number is commit order.
              await tx.query('SELECT 1');
              const n = (next.get(key) ?? 0) + 1;
              await outbox.publish(tx, type, { key, n: -1 }, { key }).then(() => {});
              next.set(key, n);
            }
          });
        }
      }),
    );
    // Bodies above carry no order; renumber by seq per key from the table itself.
    const total = KEYS * PER_KEY;
    await db.pool().query(
      `UPDATE ${outbox.names.table} o SET body = convert_to(json_build_object('key', o.key, 'n', r.n)::text, 'UTF8')
         FROM (SELECT seq, row_number() OVER (PARTITION BY key ORDER BY seq) AS n FROM ${outbox.names.table}) r
        WHERE r.seq = o.seq`,
    );
    const perKey = await db
      .pool()
      .query(`SELECT key, count(*)::int AS n FROM ${outbox.names.table} GROUP BY key`);
    expect(perKey.rows.reduce((sum, r) => sum + r.n, 0)).toBe(total);
    const published = [0, 0];
    const slowQueue = (i: number) => ({
      publish: async (t: string, body: unknown, options?: object) => {
        await new Promise((r) => setTimeout(r, 1));
        published[i] = (published[i] as number) + 1;
        return queue.publish(t, body, options);
      },
    });
    for (const i of [0, 1]) {
      const relay = outbox.relay({
        pool: db.pool(),
        queue: slowQueue(i),
        batchSize: 10,
        scanSize: 60,
        pollIntervalMs: 10,
      });
      relays.push(relay);
      await relay.start();
    }
    await got.waitForCount(total, 30_000);
    await got.expectNoMore(total, 300);
    expect(got.duplicates()).toEqual([]);
    const { inOrder, firstSeen } = orderByKey(got.messages);
    expect(inOrder).toBe(true);
    expect(firstSeen.size).toBe(perKey.rows.length);
    for (const { key, n } of perKey.rows) {
      expect(firstSeen.get(key)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    }
    // Both did part of it.
    expect(published[0]).toBeGreaterThan(total / 10);
    expect(published[1]).toBeGreaterThan(total / 10);
    expect((published[0] as number) + (published[1] as number)).toBe(total);
    console.log(`[outbox] two relays: ${published[0]} + ${published[1]} of ${total}, 0 twice`);
  });

  test('a relay that hangs mid-batch loses its batch to another after leaseMs', async () => {
    const { outbox } = await setup();
    const type = uniqueType('outbox');
    const got = collector<{ key: string; n: number }>();
    await queue.consume(type, got.handler, { group: uniqueGroup() });
    await inTransaction(db.pool(), async (tx) => {
      for (let n = 1; n <= 20; n++) await outbox.publish(tx, type, { key: 'a', n }, { key: 'a' });
    });
    let hung = 0;
    const stuck = outbox.relay({
      pool: db.pool(),
      queue: {
        publish: async (t, body, options) => {
          if (++hung === 3) await new Promise((r) => setTimeout(r, 2_500));
          return queue.publish(t, body, options);
        },
      },
      leaseMs: 500,
      pollIntervalMs: 10,
    });
    relays.push(stuck);
    await stuck.start();
    await waitFor(() => hung >= 3, 5_000, 'the first relay to hang');
    const other = outbox.relay({ pool: db.pool(), queue, pollIntervalMs: 10 });
    relays.push(other);
    await other.start();
    await waitFor(() => other.stats().delivered === 20, 10_000, 'the other relay to deliver all 20');
    expect(orderByKey(got.messages).inOrder).toBe(true);
    expect(orderByKey(got.messages).firstSeen.get('a')).toHaveLength(20);
    // The hung relay's commit failed once the server ended its session: nothing counted as sent.
    await waitFor(() => stuck.stats().errors > 0, 5_000, 'the hung relay to notice');
    expect(stuck.stats().delivered).toBe(0);
  });

  test('two transactions publishing one key: delivered in the order they committed', async () => {
    const { outbox } = await setup();
    const type = uniqueType('outbox');
    const got = collector<{ key: string; n: number }>();
    await queue.consume(type, got.handler, { group: uniqueGroup() });
    const first = await db.pool().connect();
    const second = await db.pool().connect();
    let secondInserted = false;
    try {
      await first.query('BEGIN');
      await outbox.publish(first, type, { key: 'a', n: 1 }, { key: 'a' });
      await second.query('BEGIN');
      // The second transaction inserts after the first and would commit first: it waits at publish
      // for the first one's key lock instead, so its row's place in `seq` matches its commit. (The
      // order in which this process sees the two COMMIT replies proves nothing: the lock is released
      // inside the first COMMIT, before its reply, so the second can be acknowledged first.)
      const secondDone = outbox
        .publish(second, type, { key: 'a', n: 2 }, { key: 'a' })
        .then(() => {
          secondInserted = true;
        })
        .then(() => second.query('COMMIT'));
      await new Promise((r) => setTimeout(r, 300));
      expect(secondInserted).toBe(false);
      await first.query('COMMIT');
      await secondDone;
    } finally {
      first.release();
      second.release();
    }
    const relay = outbox.relay({ pool: db.pool(), queue });
    relays.push(relay);
    expect(await relay.drain()).toBe(2);
    await got.waitForCount(2, 5_000);
    expect(got.bodies().map((b) => b.n)).toEqual([1, 2]);
  });

  test('keepSent marks rows instead of deleting them; purgeSent removes them', async () => {
    const { outbox } = await setup();
    const type = uniqueType('outbox');
    await inTransaction(db.pool(), async (tx) => {
      for (let n = 1; n <= 5; n++) await outbox.publish(tx, type, { n });
    });
    const relay = outbox.relay({ pool: db.pool(), queue, keepSent: true });
    expect(await relay.drain()).toBe(5);
    expect(await outbox.counts(db.pool())).toEqual({ pending: 0, sent: 5 });
    expect(await relay.drain()).toBe(0);
    expect(await outbox.purgeSent(db.pool(), 0)).toBe(5);
    await relay.stop();
  });

  test('bad arguments are INVALID_ARGUMENT naming what to fix', async () => {
    const { outbox } = await setup();
    expect(() => createOutbox({ table: 'drop table;' })).toThrow(/table must be an SQL identifier/);
    const tx = db.pool();
    await expect(outbox.publish(tx, 'bad type!', {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(outbox.publish(tx, 'ok', {}, { key: '' })).rejects.toThrow(/options.key must be/);
    await expect(outbox.publish(tx, 'ok', undefined)).rejects.toThrow(/body must be/);
    await expect(outbox.publish({} as never, 'ok', {})).rejects.toThrow(/tx must be/);
    expect(() => outbox.relay({ pool: db.pool(), queue, batchSize: 0 })).toThrow(/batchSize must be/);
  });
});
