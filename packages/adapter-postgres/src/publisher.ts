import {
  type OutgoingEnvelope,
  PlugmqError,
  type TransportHooks,
  type TransportPublishContext,
  waitForAbort,
} from '@plugmq/core/driver';
import type pg from 'pg';
import { withRetry } from './connection.js';
import { tables } from './topology.js';
import { bodyBytes, headersJson } from './wire.js';

/**
 * One statement per publish call: a row per (message, group registered for its type), written
 * only if no `mandatory` message of the call lacks a group. It answers which types had a group,
 * so the rest are reported unrouted, and how many mandatory messages were refused. With
 * `retained`, every message is also kept in the retained table for groups to come.
 */
function insertSql(schema: string, retained: boolean): string {
  const tableNames = tables(schema);
  const { groups, deliveries } = tableNames;
  const keep = retained
    ? `, kept AS (
  INSERT INTO ${tableNames.retained} (type, priority, msg_key, headers, body, available_at)
  SELECT m.type, m.priority, m.msg_key, m.headers, m.body, now() + m.delay_ms * interval '1 millisecond'
  FROM m WHERE NOT EXISTS (SELECT 1 FROM refused) ORDER BY m.n
)`
    : '';
  return `
WITH m AS (
  SELECT * FROM unnest($1::int[], $2::text[], $3::jsonb[], $4::bytea[], $5::int[], $6::bigint[], $7::bool[], $8::text[])
    AS m(n, type, headers, body, priority, delay_ms, mandatory, msg_key)
), refused AS (
  SELECT m.type FROM m WHERE m.mandatory AND NOT EXISTS (SELECT 1 FROM ${groups} g WHERE g.type = m.type)
), ins AS (
  INSERT INTO ${deliveries} (grp, type, priority, msg_key, headers, body, available_at)
  SELECT g.grp, m.type, m.priority, m.msg_key, m.headers, m.body, now() + m.delay_ms * interval '1 millisecond'
  FROM m JOIN ${groups} g ON g.type = m.type
  WHERE NOT EXISTS (SELECT 1 FROM refused)
  ORDER BY m.n, g.grp
  RETURNING type
)${keep}
SELECT array(SELECT DISTINCT type FROM ins) AS routed, array(SELECT type FROM refused) AS refused`;
}

export class Publisher {
  private readonly sql: string;
  /** The last publish of each key still running: the next one of the key waits for it. */
  private readonly lastOfKey = new Map<string, Promise<void>>();
  /** Calls of this event-loop turn, written together by `flush`. */
  private waiting: Call[] = [];

  constructor(
    private readonly pool: pg.Pool,
    schema: string,
    private readonly retained: boolean,
    private readonly hooks: TransportHooks,
  ) {
    this.sql = insertSql(schema, retained);
  }

  /**
   * Publishes of one key are written one after the other: two statements on two pooled
   * connections could commit out of call order, and a key's rows are claimed in `seq` order.
   */
  publish(envelopes: readonly OutgoingEnvelope[], context: TransportPublishContext): Promise<void> {
    const keys = new Set<string>();
    for (const envelope of envelopes) if (envelope.key !== undefined) keys.add(envelope.key);
    if (keys.size === 0) return this.write(envelopes, context);
    const earlier: Promise<void>[] = [];
    for (const key of keys) {
      const last = this.lastOfKey.get(key);
      if (last) earlier.push(last);
    }
    const written =
      earlier.length === 0
        ? this.write(envelopes, context)
        : Promise.all(earlier).then(() => this.write(envelopes, context));
    const settled = written.then(
      () => undefined,
      () => undefined,
    );
    for (const key of keys) this.lastOfKey.set(key, settled);
    void settled.then(() => {
      for (const key of keys) if (this.lastOfKey.get(key) === settled) this.lastOfKey.delete(key);
    });
    return written;
  }

  /**
   * Publishes of one event-loop turn share one statement (at most MAX_ROWS messages): a statement
   * per publish cost most of the client's CPU in round trips and socket writes. Each call still
   * settles on its own signal. A `mandatory` call goes alone: its refusal must store nothing of
   * it and fail no other call.
   */
  private async write(
    envelopes: readonly OutgoingEnvelope[],
    context: TransportPublishContext,
  ): Promise<void> {
    const aborted = waitForAbort(context.signal, 'publish to PostgreSQL');
    try {
      const done = new Promise<void>((resolve, reject) => {
        const call: Call = { envelopes, signal: context.signal, resolve, reject };
        if (envelopes.some((e) => e.mandatory === true)) void this.send([call]);
        else if (this.waiting.push(call) === 1) setImmediate(() => this.flush());
      });
      // A call that gave up still has its statement settle later: that outcome goes nowhere.
      done.catch(() => {});
      await Promise.race([done, aborted.promise]);
    } finally {
      aborted.dispose();
    }
  }

  private flush(): void {
    let rows = 0;
    let taken = 0;
    while (taken < this.waiting.length && (taken === 0 || rows < MAX_ROWS)) {
      rows += this.waiting[taken]?.envelopes.length ?? 0;
      taken++;
    }
    const calls = this.waiting.splice(0, taken).filter((call) => !call.signal.aborted);
    if (this.waiting.length > 0) setImmediate(() => this.flush());
    if (calls.length > 0) void this.send(calls);
  }

  private async send(calls: readonly Call[]): Promise<void> {
    const envelopes =
      calls.length === 1 ? (calls[0]?.envelopes ?? []) : calls.flatMap((call) => call.envelopes);
    let result: pg.QueryResult<{ routed: string[]; refused: string[] }>;
    try {
      result = await withRetry(
        () => this.pool.query(this.sql, statementValues(envelopes)),
        untilAllAborted(calls.map((call) => call.signal)),
        'publish to PostgreSQL',
      );
    } catch (error) {
      for (const call of calls) call.reject(error);
      return;
    }
    const { routed, refused } = result.rows[0] ?? { routed: [], refused: [] };
    if (refused.length > 0) {
      const refusal = new PlugmqError(
        'PUBLISH_FAILED',
        `no group consumes type ${refused[0]}, and the publish was mandatory: start a consumer of it first; nothing was stored`,
      );
      for (const call of calls) call.reject(refusal);
      return;
    }
    // A retained message waits for the groups to come: it is not lost, so not unrouted.
    if (!this.retained && routed.length < new Set(envelopes.map((e) => e.type)).size) {
      const seen = new Set(routed);
      for (const envelope of envelopes) if (!seen.has(envelope.type)) this.hooks.unrouted(envelope);
    }
    for (const call of calls) call.resolve();
  }
}

/** One `publish` call waiting for its statement. */
interface Call {
  readonly envelopes: readonly OutgoingEnvelope[];
  readonly signal: AbortSignal;
  resolve(): void;
  reject(error: unknown): void;
}

/** Messages in one statement at most: bounds its size when publishes pile up. */
const MAX_ROWS = 500;

function statementValues(envelopes: readonly OutgoingEnvelope[]): unknown[] {
  return [
    envelopes.map((_, n) => n),
    envelopes.map((e) => e.type),
    envelopes.map(headersJson),
    envelopes.map(bodyBytes),
    envelopes.map((e) => e.priority ?? 0),
    envelopes.map((e) => e.delayMs ?? 0),
    envelopes.map((e) => e.mandatory === true),
    envelopes.map((e) => e.key ?? null),
  ];
}

/** Aborts once every one of `signals` has: a shared statement is retried while any caller waits. */
function untilAllAborted(signals: readonly AbortSignal[]): AbortSignal {
  if (signals.length === 1 && signals[0]) return signals[0];
  const controller = new AbortController();
  let left = signals.length;
  const onAbort = () => {
    if (--left === 0) controller.abort(signals[signals.length - 1]?.reason);
  };
  for (const signal of signals) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  return controller.signal;
}
