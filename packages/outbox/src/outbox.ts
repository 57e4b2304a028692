import { randomUUID } from 'node:crypto';
import { assertMessageType, invalidArgument, PlugmqError } from '@plugmq/core';
import { OutboxRelay, type RelayOptions } from './relay.js';
import { migrationSql, type Queryable, resolveTable, type TableNames } from './sql.js';

export interface OutboxOptions {
  /** Table name, optionally schema-qualified (`app.outbox`). Default `plugmq_outbox`. */
  table?: string;
}

/** The PlugMQ publish options an outbox row can carry (delay and priority are the broker's job). */
export interface OutboxPublishOptions {
  /** Message id; a UUID when absent. Kept through the relay, so consumers can deduplicate by it. */
  id?: string;
  /** Ordering key: rows with the same key are delivered in commit order. */
  key?: string;
  headers?: Record<string, string>;
}

function validateOptions(options: OutboxPublishOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('options', 'an object', options);
  }
  if (options.id !== undefined && (typeof options.id !== 'string' || options.id === '')) {
    throw invalidArgument('options.id', 'a non-empty string', options.id);
  }
  if (options.key !== undefined && (typeof options.key !== 'string' || options.key === '')) {
    throw invalidArgument('options.key', 'a non-empty string', options.key);
  }
  if (options.headers !== undefined) {
    const h = options.headers;
    if (typeof h !== 'object' || h === null || Array.isArray(h)) {
      throw invalidArgument('options.headers', 'an object of string values', h);
    }
    for (const [name, value] of Object.entries(h)) {
      if (typeof value !== 'string') throw invalidArgument(`options.headers.${name}`, 'a string', value);
    }
  }
}

/** Bytes are stored as they are; anything else as JSON, decoded again by the relay. */
export function encodeBody(body: unknown): { bytes: Buffer; encoding: 'json' | 'bytes' } {
  if (Buffer.isBuffer(body)) return { bytes: body, encoding: 'bytes' };
  if (body instanceof Uint8Array) return { bytes: Buffer.from(body), encoding: 'bytes' };
  const text = JSON.stringify(body);
  if (text === undefined) {
    throw invalidArgument('body', 'a JSON-serialisable value or bytes', body);
  }
  return { bytes: Buffer.from(text, 'utf8'), encoding: 'json' };
}

/**
 * A transactional outbox in one PostgreSQL table: `publish` inserts a row inside the caller's
 * transaction, a relay (`relay()`) delivers committed rows to a QueueManager.
 */
export class Outbox {
  readonly names: TableNames;

  constructor(options: OutboxOptions = {}) {
    this.names = resolveTable(options.table);
  }

  /** The SQL `migrate()` runs, for applications that manage their schema with their own tool. */
  migrationSql(): string {
    return migrationSql(this.names);
  }

  /** Creates the table and its indexes if missing (idempotent). */
  async migrate(db: Queryable): Promise<void> {
    await db.query(this.migrationSql());
  }

  /**
   * Inserts one outgoing message through `tx`, a `pg` client (or any object with pg's `query`)
   * inside the caller's BEGIN: the message exists exactly when that transaction commits. With a
   * key, a transaction-level advisory lock on the key makes concurrent publishers of one key
   * insert one after the other, so the relay's order (insertion order) is their commit order.
   * Resolves with the message id.
   */
  async publish<T>(tx: Queryable, type: string, body: T, options?: OutboxPublishOptions): Promise<string> {
    if (tx === null || typeof tx !== 'object' || typeof (tx as Queryable).query !== 'function') {
      throw invalidArgument('tx', 'a pg client inside a transaction (BEGIN)', tx);
    }
    assertMessageType(type);
    validateOptions(options);
    const id = options?.id ?? randomUUID();
    const { bytes, encoding } = encodeBody(body);
    const headers = JSON.stringify(options?.headers ?? {});
    const key = options?.key ?? null;
    const t = this.names;
    const sql =
      key === null
        ? `INSERT INTO ${t.table} (id, type, key, body, encoding, headers) VALUES ($1, $2, NULL, $3, $4, $5::jsonb)`
        : `INSERT INTO ${t.table} (id, type, key, body, encoding, headers)
             SELECT $1, $2, $6, $3, $4, $5::jsonb FROM (SELECT pg_advisory_xact_lock($7, hashtext($6))) AS ordered`;
    const params: unknown[] = [id, type, bytes, encoding, headers];
    if (key !== null) params.push(key, t.publishLockSpace);
    try {
      await tx.query(sql, params);
    } catch (err) {
      throw new PlugmqError('PUBLISH_FAILED', `outbox insert into ${t.display} failed: ${describe(err)}`, {
        cause: err,
      });
    }
    return id;
  }

  /** Rows not yet relayed (and, with `keepSent`, how many were). */
  async counts(db: Queryable): Promise<{ pending: number; sent: number }> {
    const res = await db.query(
      `SELECT count(*) FILTER (WHERE sent_at IS NULL)::bigint AS pending,
              count(*) FILTER (WHERE sent_at IS NOT NULL)::bigint AS sent FROM ${this.names.table}`,
    );
    const row = res.rows[0] as { pending: string; sent: string };
    return { pending: Number(row.pending), sent: Number(row.sent) };
  }

  /** Deletes rows marked sent (relays with `keepSent: true`) longer ago than `olderThanMs`. */
  async purgeSent(db: Queryable, olderThanMs: number): Promise<number> {
    if (!Number.isInteger(olderThanMs) || olderThanMs < 0) {
      throw invalidArgument('olderThanMs', 'an integer >= 0', olderThanMs);
    }
    const res = await db.query(
      `DELETE FROM ${this.names.table} WHERE sent_at < now() - make_interval(secs => $1::double precision / 1000)`,
      [olderThanMs],
    );
    return res.rowCount ?? 0;
  }

  /** A relay for this table; `start()` it. */
  relay(options: RelayOptions): OutboxRelay {
    return new OutboxRelay(this.names, options);
  }
}

export function createOutbox(options?: OutboxOptions): Outbox {
  return new Outbox(options);
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
