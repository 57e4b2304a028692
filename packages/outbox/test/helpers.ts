import { postgresUnavailable, startPostgres, type PostgresHandle, uniqueName } from '@plugmq/testkit';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { Message } from '@plugmq/core';

/** Why the suite is skipped here, or undefined when a PostgreSQL can be had. */
export const noPostgres = postgresUnavailable();

/** One PostgreSQL per test file, with a pool on it; each test uses its own table. */
export function usePostgres(): { pool: () => pg.Pool; url: () => string } {
  let server: PostgresHandle | undefined;
  let pool: pg.Pool | undefined;
  beforeAll(async () => {
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: server.url, max: 20 });
  }, 120_000);
  afterAll(async () => {
    await pool?.end();
    await server?.stop();
  }, 60_000);
  return {
    pool: () => pool as pg.Pool,
    url: () => (server as PostgresHandle).url,
  };
}

export function uniqueTable(prefix = 'outbox'): string {
  return uniqueName(prefix).replace(/[^A-Za-z0-9_]/g, '_').toLowerCase().slice(0, 60);
}

/** Runs `work` inside BEGIN … COMMIT on one pooled client (ROLLBACK when it throws). */
export async function inTransaction<T>(pool: pg.Pool, work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    const result = await work(tx);
    await tx.query('COMMIT');
    return result;
  } catch (err) {
    await tx.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    tx.release();
  }
}

/**
 * Per key, the sequence numbers in arrival order, and whether their first occurrences rise (a
 * redelivered batch may repeat numbers, but a new number never arrives before an older one).
 */
export function orderByKey(messages: Message<{ key: string; n: number }>[]): {
  inOrder: boolean;
  firstSeen: Map<string, number[]>;
} {
  const firstSeen = new Map<string, number[]>();
  const seen = new Set<string>();
  let inOrder = true;
  for (const m of messages) {
    if (seen.has(m.id)) continue;
    seen.add(m.id);
    const list = firstSeen.get(m.body.key) ?? [];
    if (list.length > 0 && (list[list.length - 1] as number) >= m.body.n) inOrder = false;
    list.push(m.body.n);
    firstSeen.set(m.body.key, list);
  }
  return { inOrder, firstSeen };
}
