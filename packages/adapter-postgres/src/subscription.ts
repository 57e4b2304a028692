import { randomUUID } from 'node:crypto';
import {
  type DeliverFn,
  type Delivery,
  describeError,
  type Logger,
  retryDelayMs,
  type SubscribeRequest,
  type TransportSubscription,
} from '@plugmq/core/driver';
import type pg from 'pg';
import { RECONNECT, withRetry } from './connection.js';
import type { PostgresConfig } from './options.js';
import { joinFromEarliest } from './retention.js';
import { keyIsFree, tables } from './topology.js';
import { type DeliveryRow, envelopeFromRow } from './wire.js';

/** Shortest wait before looking again when rows exist but are claimed by a concurrent transaction. */
const MIN_WAIT_MS = 20;

function statements(schema: string) {
  const { groups, deliveries } = tables(schema);
  const mine = 'seq = $1 AND locked_by = $2';
  return {
    join: `INSERT INTO ${groups} (type, grp) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING`,
    // The acks waiting when a claim goes out ride in its statement: one round trip for both.
    claim: `WITH acked AS (DELETE FROM ${deliveries} WHERE seq = ANY($6::bigint[]) AND locked_by = $5)
SELECT * FROM ${schema}.claim($1, $2, $3, $4, $5)`,
    // Milliseconds until the group's next row becomes claimable (a delay, a retry, a lease ending).
    due: `
SELECT GREATEST(0, EXTRACT(EPOCH FROM min(GREATEST(available_at, COALESCE(locked_until, available_at))) - now()) * 1000)::float8 AS ms
FROM ${deliveries} d WHERE grp = $1 AND type = ANY($2) AND ${keyIsFree(schema, 'd', '$3')}`,
    renew: `UPDATE ${deliveries} SET locked_until = now() + $2 * interval '1 millisecond' WHERE seq = ANY($1::bigint[]) AND locked_by = $3`,
    ack: `DELETE FROM ${deliveries} WHERE seq = ANY($1::bigint[]) AND locked_by = $2`,
    retry: `UPDATE ${deliveries} SET attempt = attempt + 1, available_at = now() + $3 * interval '1 millisecond', locked_until = NULL, locked_by = NULL WHERE ${mine}`,
    release: `UPDATE ${deliveries} SET locked_until = NULL, locked_by = NULL WHERE ${mine}`,
  };
}

interface Ack {
  readonly seq: string;
  resolve(): void;
  reject(error: unknown): void;
}

export interface SubscriptionDeps {
  readonly pool: pg.Pool;
  readonly config: PostgresConfig;
  readonly logger: Logger;
}

/**
 * One subscription: claims up to `prefetch` rows of its group at a time and hands each to core,
 * which acks, retries or releases it. Woken by NOTIFY for its group, by its own settlements, and
 * by a timer (the next delayed row's time, at most `pollMs`). Renews the leases it holds.
 */
export class PostgresSubscription implements TransportSubscription {
  private readonly sql: ReturnType<typeof statements>;
  private readonly token = randomUUID();
  private readonly prefetch: number;
  private readonly held = new Set<string>();
  /** Acks of one event-loop turn, deleted by one statement. */
  private acks: Ack[] = [];
  private stopped = false;
  private pumping: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly renewer: NodeJS.Timeout;
  /** Settlements must not hang on a server that is gone for good: bounded by the lease. */
  private readonly settleSignal = () => AbortSignal.timeout(this.deps.config.leaseMs);

  constructor(
    readonly request: SubscribeRequest,
    private readonly deliver: DeliverFn,
    private readonly deps: SubscriptionDeps,
  ) {
    this.sql = statements(deps.config.schema);
    // Claiming only what core can start at once keeps `priority` exact: a row claimed early would
    // wait in core's queue ahead of a higher-priority one published after it.
    this.prefetch = deps.config.prefetch ?? request.concurrency;
    this.renewer = setInterval(() => this.renew(), Math.max(50, Math.floor(deps.config.leaseMs / 3)));
    this.renewer.unref();
  }

  get group(): string {
    return this.request.group;
  }

  /**
   * Registers the group for its types: publishes from now on write rows for it. A group new to a
   * type that starts from 'earliest' (with `retentionMs`) also gets the type's retained messages.
   */
  async start(): Promise<void> {
    const { pool, config } = this.deps;
    const { types, group, startFrom } = this.request;
    if (startFrom === 'earliest' && config.retentionMs > 0) {
      await joinFromEarliest(pool, config.schema, types, group);
    } else {
      await pool.query(this.sql.join, [types, group]);
    }
    this.wake();
  }

  /** Looks for rows now (a NOTIFY, a settlement, a reconnect). */
  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private async pump(): Promise<void> {
    const { pool, config } = this.deps;
    const { types, group } = this.request;
    try {
      for (;;) {
        const room = this.prefetch - this.held.size;
        if (this.stopped || room <= 0) return;
        this.again = false;
        const acking = this.acks;
        this.acks = [];
        let claimed: pg.QueryResult<DeliveryRow>;
        try {
          claimed = await pool.query<DeliveryRow>(this.sql.claim, [
            group,
            types,
            room,
            config.leaseMs,
            this.token,
            acking.map((entry) => entry.seq),
          ]);
        } catch (error) {
          // The acks go on their own, retried within the lease.
          this.queueAcks(acking);
          throw error;
        }
        for (const entry of acking) entry.resolve();
        this.failures = 0;
        const rows = claimed.rows.sort((a, b) => b.priority - a.priority || Number(a.seq) - Number(b.seq));
        let keyed = false;
        for (const row of rows) keyed = this.hand(row) || keyed;
        // A claim takes one row per key; the next rows of a key just claimed are ours to take now.
        if (rows.length < room && !keyed) break;
      }
      if (this.stopped || this.again) return;
      const due = await pool.query<{ ms: number | null }>(this.sql.due, [group, types, this.token]);
      const ms = due.rows[0]?.ms;
      this.arm(ms === null || ms === undefined ? config.pollMs : Math.max(MIN_WAIT_MS, Math.ceil(ms)));
    } catch (error) {
      if (this.stopped) return;
      this.deps.logger.debug(
        {
          group,
          error: describeError(error),
        },
        'postgres: claiming failed, trying again',
      );
      this.arm(retryDelayMs(RECONNECT, ++this.failures));
    }
  }

  private arm(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.wake(), Math.min(ms, this.deps.config.pollMs));
  }

  /** Hands a claimed row to core; true when it has a key. */
  private hand(row: DeliveryRow): boolean {
    const seq = String(row.seq);
    this.held.add(seq);
    if (this.stopped) {
      // Nobody awaits this release: a server gone for good ends it at the lease, which frees the row anyway.
      this.settle(seq, this.sql.release, []).catch((error: unknown) =>
        this.deps.logger.debug(
          { error: describeError(error) },
          'postgres: releasing a row claimed while stopping failed',
        ),
      );
      return false;
    }
    const envelope = envelopeFromRow(row);
    const delivery: Delivery = {
      envelope,
      ack: () => this.ack(seq),
      retry: (delayMs) => this.settle(seq, this.sql.retry, [Math.max(0, Math.round(delayMs))]),
      release: () => this.settle(seq, this.sql.release, []),
    };
    this.deliver.submit(delivery); // settlement comes back through ack/retry/release
    return envelope.key !== undefined;
  }

  private async settle(seq: string, sql: string, extra: unknown[]): Promise<void> {
    try {
      await withRetry(
        () => this.deps.pool.query(sql, [seq, this.token, ...extra]),
        this.settleSignal(),
        'settling a PostgreSQL row',
      );
    } finally {
      this.held.delete(seq);
      this.wake();
    }
  }

  private ack(seq: string): Promise<void> {
    // The slot is free at once: the row stays leased to us until its DELETE lands, so the next
    // claim (which carries the DELETE when it goes out first) cannot take it again.
    this.held.delete(seq);
    const acked = new Promise<void>((resolve, reject) => this.queueAcks([{ seq, resolve, reject }]));
    this.wake();
    return acked;
  }

  private queueAcks(entries: readonly Ack[]): void {
    if (entries.length === 0) return;
    const first = this.acks.length === 0;
    this.acks.push(...entries);
    if (first) setImmediate(() => void this.flushAcks());
  }

  private async flushAcks(): Promise<void> {
    const batch = this.acks;
    this.acks = [];
    if (batch.length === 0) return;
    const seqs = batch.map((entry) => entry.seq);
    try {
      await withRetry(
        () => this.deps.pool.query(this.sql.ack, [seqs, this.token]),
        this.settleSignal(),
        'acknowledging PostgreSQL rows',
      );
      for (const entry of batch) entry.resolve();
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    }
  }

  /** Keeps the leases of rows whose handlers still run; a crashed process stops renewing. */
  private renew(): void {
    if (this.held.size === 0) return;
    this.deps.pool
      .query(this.sql.renew, [[...this.held], this.deps.config.leaseMs, this.token])
      .catch((error: unknown) =>
        this.deps.logger.debug({ error: describeError(error) }, 'postgres: renewing leases failed'),
      );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.pumping;
  }

  /** After core settled every delivery: nothing is held any more. */
  close(): void {
    this.stopped = true;
    clearInterval(this.renewer);
  }
}
