/**
 * The driver's tables, in the schema named by the `schema` option:
 * - `groups (type, grp)`: the groups that consume each type; a publish copies a message to each.
 * - `deliveries`: one row per (group, message). A consumer claims rows by setting `locked_until`
 *   (a lease) with SKIP LOCKED, deletes a row on ack, and moves `available_at` on retry. A row
 *   with a `msg_key` is claimable only when no earlier row of its key waits in its group.
 * - `retained`: with `retentionMs`, every message published in the last `retentionMs`, copied
 *   into the deliveries of a new group that starts from 'earliest'.
 * A trigger NOTIFYs the group on the schema's channel whenever a row becomes claimable now.
 */
export function tables(schema: string) {
  return {
    groups: `${schema}.groups`,
    deliveries: `${schema}.deliveries`,
    retained: `${schema}.retained`,
    channel: `plugmq_${schema}`,
  };
}

/** Idempotent setup, run under an advisory lock so managers starting together do not race. */
export function setupSql(schema: string): string {
  const { groups, deliveries, retained, channel } = tables(schema);
  return `
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${groups} (type text NOT NULL, grp text NOT NULL, PRIMARY KEY (type, grp));
CREATE TABLE IF NOT EXISTS ${deliveries} (
  seq bigserial PRIMARY KEY,
  grp text NOT NULL,
  type text NOT NULL,
  priority integer NOT NULL DEFAULT 0,
  attempt integer NOT NULL DEFAULT 1,
  available_at timestamptz NOT NULL DEFAULT now(),
  locked_until timestamptz,
  locked_by text,
  headers jsonb NOT NULL,
  body bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_claim ON ${deliveries} (grp, priority DESC, seq);
-- Added after the first release: tables created before it gain the column here.
ALTER TABLE ${deliveries} ADD COLUMN IF NOT EXISTS msg_key text;
CREATE INDEX IF NOT EXISTS deliveries_key ON ${deliveries} (grp, type, msg_key, seq) WHERE msg_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${retained} (
  seq bigserial PRIMARY KEY,
  type text NOT NULL,
  priority integer NOT NULL,
  msg_key text,
  available_at timestamptz NOT NULL,
  published_at timestamptz NOT NULL DEFAULT now(),
  headers jsonb NOT NULL,
  body bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS retained_type ON ${retained} (type, seq);
CREATE INDEX IF NOT EXISTS retained_age ON ${retained} (published_at);
-- The claim walks deliveries_claim in order, stops after n rows and updates them by primary key
-- (= ANY(ARRAY(...)): an IN would be planned as a hash join over the whole table, the LIMIT being
-- a parameter). A keyed row waits while an earlier row of its key is in the group (waiting,
-- retrying or leased by another subscription), so one subscription at a time has a key, and
-- core hands it its messages in publish order. Planner
-- settings pinned on the function: a queue table's statistics are stale by nature (it grows from empty between ANALYZEs), and with them the planner sorts every waiting
-- row of the group on each claim (18 ms at 20 000 rows).
CREATE OR REPLACE FUNCTION ${schema}.claim(p_grp text, p_types text[], p_n integer, p_lease_ms bigint, p_token text)
RETURNS TABLE (seq bigint, type text, priority integer, attempt integer, headers jsonb, body bytea)
LANGUAGE sql SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off AS $$
UPDATE ${deliveries} d SET locked_until = now() + p_lease_ms * interval '1 millisecond', locked_by = p_token
WHERE d.seq = ANY(ARRAY(
  SELECT c.seq FROM ${deliveries} c
  WHERE c.grp = p_grp AND c.type = ANY(p_types) AND c.available_at <= now()
    AND (c.locked_until IS NULL OR c.locked_until < now())
    AND ${keyIsFree(schema, 'c', 'p_token')}
  ORDER BY c.priority DESC, c.seq LIMIT p_n FOR UPDATE SKIP LOCKED))
RETURNING d.seq, d.type, d.priority, d.attempt, d.headers, d.body $$;
CREATE OR REPLACE FUNCTION ${schema}.notify_claimable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('${channel}', NEW.grp); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER deliveries_notify AFTER INSERT OR UPDATE OF locked_until ON ${deliveries}
  FOR EACH ROW WHEN (NEW.locked_until IS NULL AND NEW.available_at <= now())
  EXECUTE FUNCTION ${schema}.notify_claimable();
-- Acking a keyed row frees the next row of its key, which no insert or update announces.
CREATE OR REPLACE FUNCTION ${schema}.notify_key_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('${channel}', OLD.grp); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER deliveries_key_freed AFTER DELETE ON ${deliveries}
  FOR EACH ROW WHEN (OLD.msg_key IS NOT NULL)
  EXECUTE FUNCTION ${schema}.notify_key_freed();`;
}

/**
 * SQL: no earlier row of the deliveries row `row`'s key waits in its group, other than rows the
 * subscription `token` holds (core runs those first: it orders a key's messages in a subscription),
 * so the row may be handled now. An unkeyed row always may.
 */
export function keyIsFree(schema: string, row: string, token: string): string {
  return `(${row}.msg_key IS NULL OR NOT EXISTS (SELECT 1 FROM ${tables(schema).deliveries} e
      WHERE e.grp = ${row}.grp AND e.type = ${row}.type AND e.msg_key = ${row}.msg_key AND e.seq < ${row}.seq
        AND (e.locked_by IS DISTINCT FROM ${token} OR e.locked_until < now())))`;
}
