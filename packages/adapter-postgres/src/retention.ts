import { describeError, type Logger } from '@plugmq/core/driver';
import type pg from 'pg';
import { tables } from './topology.js';

/**
 * Registers `group` for `types` and, for each type it was new to, copies the type's retained
 * messages into the group's deliveries, all in one transaction.
 *
 * The ACCESS EXCLUSIVE lock on `groups` is what makes the copy exact: it waits until every publish
 * reading `groups` has committed (its messages are then in `retained`, so they are copied) and
 * holds back the publishes that start meanwhile until the group is committed (a READ COMMITTED
 * statement takes its snapshot after its locks, so they see the group and write its rows
 * themselves, and they are not in the copy). Each message reaches the group once, and publishing
 * pauses for the length of the copy.
 */
export async function joinFromEarliest(
  pool: pg.Pool,
  schema: string,
  types: readonly string[],
  group: string,
): Promise<void> {
  const { groups, deliveries, retained } = tables(schema);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`LOCK TABLE ${groups} IN ACCESS EXCLUSIVE MODE`);
    await client.query(
      `WITH joined AS (
  INSERT INTO ${groups} (type, grp) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING RETURNING type
)
INSERT INTO ${deliveries} (grp, type, priority, msg_key, headers, body, available_at)
SELECT $2, r.type, r.priority, r.msg_key, r.headers, r.body, GREATEST(r.available_at, now())
FROM ${retained} r JOIN joined j ON j.type = r.type
ORDER BY r.seq`,
      [types, group],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Deletes retained messages older than `retentionMs`, every quarter of it (at least every second,
 * at most every minute). Every manager of the schema does it: the deletes are idempotent.
 */
export function startTrimming(
  pool: pg.Pool,
  schema: string,
  retentionMs: number,
  logger: Logger,
): () => void {
  const sql = `DELETE FROM ${tables(schema).retained} WHERE published_at < now() - $1 * interval '1 millisecond'`;
  const timer = setInterval(
    () => {
      pool
        .query(sql, [retentionMs])
        .catch((error: unknown) =>
          logger.debug({ error: describeError(error) }, 'postgres: trimming retained messages failed'),
        );
    },
    Math.min(60_000, Math.max(1_000, Math.floor(retentionMs / 4))),
  );
  timer.unref();
  return () => clearInterval(timer);
}
