import {
  DEAD_LETTER_GROUP,
  type DeadLetterState,
  type Envelope,
  type GroupState,
  type TransportInspection,
  type TransportInspectQuery,
} from '@plugmq/core/driver';
import type pg from 'pg';
import { tables } from './topology.js';
import { type DeliveryRow, envelopeFromRow } from './wire.js';

/**
 * One aggregate over the group's rows, by the row states the subscription leaves:
 * claimable (available, no live lease: a crashed consumer's expired lease counts), leased
 * (in flight), waiting for a retry delay (attempt > 1, available later; a delayed publish with
 * attempt 1 is neither). A group with no row reports zeros through the LEFT JOIN.
 */
function statements(schema: string) {
  const { groups, deliveries } = tables(schema);
  const claimable = 'd.available_at <= now() AND (d.locked_until IS NULL OR d.locked_until < now())';
  return {
    inspect: `
SELECT g.type, g.grp,
  count(d.seq) FILTER (WHERE ${claimable})::int AS backlog,
  count(d.seq) FILTER (WHERE d.locked_until >= now())::int AS in_flight,
  count(d.seq) FILTER (WHERE d.available_at > now() AND d.locked_until IS NULL AND d.attempt > 1)::int AS retrying,
  count(d.seq)::int AS stored,
  (EXTRACT(EPOCH FROM now() - min(d.available_at) FILTER (WHERE ${claimable})) * 1000)::float8 AS oldest_waiting_ms,
  (EXTRACT(EPOCH FROM now() - min(d.available_at)) * 1000)::float8 AS oldest_stored_ms
FROM ${groups} g LEFT JOIN ${deliveries} d ON d.grp = g.grp AND d.type = g.type
WHERE $1::text[] IS NULL OR g.type = ANY($1)
GROUP BY g.type, g.grp`,
    ensure: `INSERT INTO ${groups} (type, grp) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
    // In the order a claim takes them (deliveries_claim); leased rows included: not settled yet.
    peek: `
SELECT seq, type, priority, attempt, headers, body FROM ${deliveries}
WHERE grp = $1 AND type = $2 ORDER BY priority DESC, seq LIMIT $3`,
  };
}

interface InspectRow {
  type: string;
  grp: string;
  backlog: number;
  in_flight: number;
  retrying: number;
  stored: number;
  oldest_waiting_ms: number | null;
  oldest_stored_ms: number | null;
}

const age = (ms: number | null): number | undefined =>
  ms === null ? undefined : Math.max(0, Math.round(ms));

export class PostgresInspector {
  private readonly sql: ReturnType<typeof statements>;

  constructor(
    private readonly pool: pg.Pool,
    schema: string,
  ) {
    this.sql = statements(schema);
  }

  /** One statement; `consumers` is unknown (a subscription holds no row while idle). */
  async inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    const types = query.types === undefined ? null : [...query.types];
    const { rows } = await this.pool.query<InspectRow>(this.sql.inspect, [types]);
    const groups: GroupState[] = [];
    const deadLetters = new Map<string, DeadLetterState>();
    for (const row of rows) {
      if (row.grp === DEAD_LETTER_GROUP) {
        deadLetters.set(row.type, {
          type: row.type,
          count: row.stored,
          oldestAgeMs: age(row.oldest_stored_ms),
        });
        continue;
      }
      groups.push({
        type: row.type,
        group: row.grp,
        backlog: row.backlog,
        inFlight: row.in_flight,
        oldestWaitingMs: age(row.oldest_waiting_ms),
        consumers: undefined,
        retryBacklog: row.retrying,
      });
    }
    for (const type of query.deadLetterTypes) {
      if (!deadLetters.has(type)) deadLetters.set(type, { type, count: 0, oldestAgeMs: undefined });
    }
    return { groups, deadLetters: [...deadLetters.values()] };
  }

  async ensureGroup(type: string, group: string): Promise<void> {
    await this.pool.query(this.sql.ensure, [type, group]);
  }

  async peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    const { rows } = await this.pool.query<DeliveryRow>(this.sql.peek, [group, type, limit]);
    return rows.map(envelopeFromRow);
  }
}
