/**
 * The driver's tables, in the schema named by the `schema` option:
 * - `groups (type, grp)`: the groups that consume each type; a publish copies a message to each.
 * - `deliveries`: one row per (group, message). A consumer claims rows by setting `locked_until`
 *   (a lease) with SKIP LOCKED, deletes a row on ack, and moves `available_at` on retry.
 * A trigger NOTIFYs the group on the schema's channel whenever a row becomes claimable now.
 */
export function tables(schema: string) {
  return {
    groups: `${schema}.groups`,
    deliveries: `${schema}.deliveries`,
    channel: `plugmq_${schema}`,
  };
}

/** Idempotent setup, run under an advisory lock so managers starting together do not race. */
export function setupSql(schema: string): string {
  const { groups, deliveries, channel } = tables(schema);
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
CREATE OR REPLACE FUNCTION ${schema}.notify_claimable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('${channel}', NEW.grp); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER deliveries_notify AFTER INSERT OR UPDATE OF locked_until ON ${deliveries}
  FOR EACH ROW WHEN (NEW.locked_until IS NULL AND NEW.available_at <= now())
  EXECUTE FUNCTION ${schema}.notify_claimable();`;
}
