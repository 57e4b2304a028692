import { invalidArgument } from '@plugmq/core';

/** What the outbox needs of a `pg` Client, PoolClient or Pool. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

export interface TableNames {
  /** Quoted, ready for SQL. */
  readonly table: string;
  /** As the user wrote it, for messages. */
  readonly display: string;
  /** Unqualified name, the prefix of index names (indexes live in the table's schema). */
  readonly bare: string;
  /** Advisory-lock class ids (int4) of this table: publishers of one key, relays of one key. */
  readonly publishLockSpace: number;
  readonly relayLockSpace: number;
  readonly migrateLockSpace: number;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** FNV-1a as a signed int32: advisory lock class ids must fit PostgreSQL's int4. */
function lockSpace(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

export function resolveTable(name: string | undefined): TableNames {
  const display = name ?? 'plugmq_outbox';
  const parts = typeof display === 'string' ? display.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw invalidArgument(
      'table',
      'an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters), optionally schema-qualified',
      name,
    );
  }
  const bare = parts[parts.length - 1] as string;
  return {
    table: parts.map((p) => `"${p}"`).join('.'),
    display,
    bare,
    publishLockSpace: lockSpace(`plugmq-outbox:${display}:publish`),
    relayLockSpace: lockSpace(`plugmq-outbox:${display}:relay`),
    migrateLockSpace: lockSpace(`plugmq-outbox:${display}:migrate`),
  };
}

/**
 * The table and its indexes. `seq` is the delivery order: a publisher of a key holds that key's
 * advisory lock until it commits, so for one key `seq` order is commit order. The partial indexes
 * cover only pending rows, so rows kept with `keepSent` cost the relay nothing.
 */
export function migrationSql(t: TableNames): string {
  return `SELECT pg_advisory_xact_lock(${t.migrateLockSpace});
CREATE TABLE IF NOT EXISTS ${t.table} (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id         text        NOT NULL,
  type       text        NOT NULL,
  key        text,
  body       bytea       NOT NULL,
  encoding   text        NOT NULL DEFAULT 'json' CHECK (encoding IN ('json', 'bytes')),
  headers    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS "${t.bare}_pending_seq" ON ${t.table} (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS "${t.bare}_pending_key" ON ${t.table} (key, seq) WHERE sent_at IS NULL AND key IS NOT NULL;`;
}
