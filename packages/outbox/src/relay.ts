import { invalidArgument, type Logger, PlugmqError, type QueueManager, silentLogger } from '@plugmq/core';
import type { Queryable, TableNames } from './sql.js';

/** A pooled connection the relay holds for its lifetime (pg's PoolClient fits). */
export interface RelayClient extends Queryable {
  release(destroy?: boolean | Error): void;
  /** pg's clients emit 'error' when the server ends the session while the client is idle. */
  on?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
}

export interface RelayOptions {
  /** Where the relay takes its one connection from: a `pg` Pool (or anything with `connect()`). */
  pool: { connect(): Promise<RelayClient> };
  /** The target: any PlugMQ QueueManager (only `publish` is used). */
  queue: Pick<QueueManager, 'publish'>;
  /** Rows with a key taken per round (default 100); rows without a key, as many again. */
  batchSize?: number;
  /** Pending keyed rows looked at, oldest first, to find keys no other relay holds (default 4 × batchSize). */
  scanSize?: number;
  /** Pause after a round that found less than a full batch (default 200 ms). */
  pollIntervalMs?: number;
  /**
   * How long a relay may hold its batch without talking to PostgreSQL before the server ends its
   * session (`idle_in_transaction_session_timeout`), releasing its locks so another relay takes the
   * batch over. Covers a relay that hangs rather than dies. Default 60 000 ms.
   */
  leaseMs?: number;
  /** Mark relayed rows (`sent_at`) instead of deleting them; `Outbox.purgeSent` removes them later. */
  keepSent?: boolean;
  logger?: Logger;
}

export interface RelayStats {
  running: boolean;
  /** Messages published and recorded as sent. */
  delivered: number;
  /** Rounds that relayed at least one message. */
  batches: number;
  /** Failed rounds (database or broker); the relay retries after pollIntervalMs, doubling up to 5 s. */
  errors: number;
  lastError?: string;
  lastDeliveryAt?: number;
}

interface Row {
  seq: string;
  id: string;
  type: string;
  key: string | null;
  body: Buffer;
  encoding: 'json' | 'bytes';
  headers: Record<string, string>;
}

function positiveInteger(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidArgument(field, 'a positive integer', value);
  }
  return value;
}

const MAX_BACKOFF_MS = 5_000;

/**
 * Delivers committed outbox rows to a QueueManager, at least once, in `seq` order per key.
 *
 * One round is one transaction: lock keys, read their oldest rows, publish, delete (or mark) what
 * was published, commit. Keys are claimed with transaction-level advisory locks rather than row
 * locks: `FOR UPDATE SKIP LOCKED` on rows would let a second relay skip a locked row of a key and
 * publish that key's next row first. A lock per key keeps a whole key with one relay, and since
 * the locks belong to the transaction, a relay that dies (or whose session the server ends after
 * `leaseMs`) rolls back and frees its keys: its batch is published again by whoever takes it.
 * Rows without a key need no order and are claimed with `FOR UPDATE SKIP LOCKED`.
 */
export class OutboxRelay {
  private readonly batchSize: number;
  private readonly scanSize: number;
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly logger: Logger;
  private client: RelayClient | undefined;
  /** Removes this relay's error listener before the client goes back to the pool. */
  private detach: () => void = () => {};
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private readonly counters: Omit<RelayStats, 'running'> = { delivered: 0, batches: 0, errors: 0 };

  constructor(
    private readonly t: TableNames,
    private readonly options: RelayOptions,
  ) {
    if (typeof options?.pool?.connect !== 'function') {
      throw invalidArgument('pool', 'a pg Pool (an object with connect())', options?.pool);
    }
    if (typeof options.queue?.publish !== 'function') {
      throw invalidArgument('queue', 'a PlugMQ QueueManager', options.queue);
    }
    this.batchSize = positiveInteger(options.batchSize, 'batchSize', 100);
    this.scanSize = positiveInteger(options.scanSize, 'scanSize', this.batchSize * 4);
    this.pollIntervalMs = positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 200);
    this.leaseMs = positiveInteger(options.leaseMs, 'leaseMs', 60_000);
    this.logger = options.logger ?? silentLogger;
  }

  /** Starts relaying in the background; resolves once the first connection is made. */
  async start(): Promise<void> {
    if (this.loop) return;
    this.stopping = false;
    await this.connect();
    this.loop = this.run();
  }

  /** Finishes the round in progress (publishes and commits it), then releases the connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    if (this.client) {
      this.detach();
      this.client.release();
    }
    this.client = undefined;
  }

  stats(): RelayStats {
    return { running: this.loop !== undefined && !this.stopping, ...this.counters };
  }

  /** Runs rounds until one finds nothing to relay; for tests, scripts and a relay run from cron. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.round();
      total += n;
      if (n === 0) return total;
    }
  }

  private async connect(): Promise<RelayClient> {
    if (this.client) return this.client;
    let client: RelayClient;
    try {
      client = await this.options.pool.connect();
    } catch (err) {
      throw new PlugmqError('CONNECTION', `outbox relay could not connect: ${message(err)}`, { cause: err });
    }
    try {
      await client.query(`SET idle_in_transaction_session_timeout = ${this.leaseMs}`);
    } catch (err) {
      client.release(true);
      throw new PlugmqError('CONNECTION', `outbox relay could not set up its session: ${message(err)}`, {
        cause: err,
      });
    }
    // A session the server ended (the lease ran out) must not crash the process: the next query
    // fails and the round starts over on a new connection.
    const onError = (err: Error) => {
      if (this.client === client) this.client = undefined;
      this.logger.debug({ err: err.message }, 'outbox relay connection lost');
    };
    client.on?.('error', onError);
    this.detach = () => client.off?.('error', onError);
    this.client = client;
    return client;
  }

  private async run(): Promise<void> {
    let backoff = this.pollIntervalMs;
    while (!this.stopping) {
      let relayed = 0;
      try {
        relayed = await this.round();
        backoff = this.pollIntervalMs;
      } catch (err) {
        this.counters.errors++;
        const text = message(err);
        if (text !== this.counters.lastError) this.logger.warn({ err: text }, 'outbox relay round failed; retrying');
        this.counters.lastError = text;
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      if (relayed < this.batchSize) await this.sleep(this.pollIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /** One transaction: claim, publish, record. Resolves with how many messages it relayed. */
  async round(): Promise<number> {
    const client = await this.connect();
    let published: string[] = [];
    let failure: unknown;
    try {
      await client.query('BEGIN');
      const rows = await this.claim(client);
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      ({ published, failure } = await this.publish(rows, client));
      if (published.length > 0) {
        const sql = this.options.keepSent
          ? `UPDATE ${this.t.table} SET sent_at = now() WHERE seq = ANY($1::bigint[])`
          : `DELETE FROM ${this.t.table} WHERE seq = ANY($1::bigint[])`;
        await client.query(sql, [published]);
      }
      await client.query('COMMIT');
    } catch (err) {
      // The session may be gone (lease over, server restart): start the next round on a new one.
      if (this.client === client) this.detach();
      this.client = undefined;
      client.release(err instanceof Error ? err : true);
      throw err;
    }
    if (published.length > 0) {
      this.counters.delivered += published.length;
      this.counters.batches++;
      this.counters.lastDeliveryAt = Date.now();
    }
    if (failure !== undefined) throw failure;
    return published.length;
  }

  private async claim(client: RelayClient): Promise<Row[]> {
    const t = this.t;
    const columns = 'seq, id, type, key, body, encoding, headers';
    // Oldest pending keys first; the try-lock is volatile, so PostgreSQL evaluates it row by row
    // after the materialised CTEs and stops at the LIMIT: no lock is taken on keys left unread.
    const lanes = await client.query(
      `WITH head AS MATERIALIZED (
         SELECT seq, key FROM ${t.table} WHERE sent_at IS NULL AND key IS NOT NULL ORDER BY seq LIMIT $1
       ), firsts AS MATERIALIZED (
         SELECT key, min(seq) AS first FROM head GROUP BY key ORDER BY first
       )
       SELECT key FROM firsts WHERE pg_try_advisory_xact_lock($2, hashtext(key)) LIMIT $3`,
      [this.scanSize, t.relayLockSpace, this.batchSize],
    );
    const keys = (lanes.rows as { key: string }[]).map((r) => r.key);
    // A new statement, so a new snapshot: it sees every row the previous holder of a key committed.
    const keyed =
      keys.length === 0
        ? []
        : ((
            await client.query(
              `SELECT ${columns} FROM ${t.table} WHERE sent_at IS NULL AND key = ANY($1::text[]) ORDER BY seq LIMIT $2`,
              [keys, this.batchSize],
            )
          ).rows as Row[]);
    const keyless = (
      await client.query(
        `SELECT ${columns} FROM ${t.table} WHERE sent_at IS NULL AND key IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.batchSize],
      )
    ).rows as Row[];
    return keyed.concat(keyless);
  }

  /**
   * Each key's rows one after the other (the next only once the broker confirmed the previous),
   * keys and keyless rows side by side. A key stops at its first failure, so nothing after an
   * unpublished row of that key is recorded as sent.
   */
  private async publish(rows: Row[], client: RelayClient): Promise<{ published: string[]; failure: unknown }> {
    const lanes = new Map<string, Row[]>();
    for (const row of rows) {
      const lane = row.key === null ? `\u0000${row.seq}` : row.key;
      const list = lanes.get(lane);
      if (list) list.push(row);
      else lanes.set(lane, [row]);
    }
    const published: string[] = [];
    let failure: unknown;
    await Promise.all(
      [...lanes.values()].map(async (lane) => {
        for (const row of lane) {
          // The server ended the session (lease over): the batch is another relay's now.
          if (this.client !== client) {
            failure ??= new PlugmqError('CONNECTION', 'outbox relay lost its database session mid-batch');
            return;
          }
          try {
            const body = row.encoding === 'json' ? JSON.parse(row.body.toString('utf8')) : row.body;
            await this.options.queue.publish(row.type, body, {
              id: row.id,
              ...(row.key === null ? {} : { key: row.key }),
              headers: row.headers,
            });
            published.push(row.seq);
          } catch (err) {
            failure ??= err;
            return;
          }
        }
      }),
    );
    return { published, failure };
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
