import {
  abortReason,
  delay,
  describeConnectFailure,
  describeError,
  type Logger,
  PlugmqError,
  type RetryPolicy,
  redactCredentials,
  retryDelayMs,
} from '@plugmq/core/driver';
import pg from 'pg';
import type { PostgresConfig } from './options.js';
import { setupSql } from './topology.js';

/** Back-off between attempts of a statement the server could not answer (restart, failover). */
export const RECONNECT: RetryPolicy = {
  maxAttempts: Number.POSITIVE_INFINITY,
  initialDelayMs: 50,
  maxDelayMs: 1_000,
  factor: 2,
  jitter: true,
};

/**
 * Whether a failed statement may be sent again: the connection broke or the server is starting or
 * shutting down (SQLSTATE classes 08 and 57P), as opposed to an error in the statement itself.
 */
export function transient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return /^(08|57P)/.test(code);
  return true;
}

/** Runs `work` until it succeeds, retrying transient failures until `signal` aborts. */
export async function withRetry<T>(work: () => Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await work();
    } catch (error) {
      if (!transient(error)) throw error;
      if (signal.aborted) throw abortReason(signal, what);
      await delay(retryDelayMs(RECONNECT, failures), signal);
      if (signal.aborted) throw abortReason(signal, what);
    }
  }
}

function target(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 5432) };
}

/** CONNECTION naming why, never the password. */
export function connectionError(url: string, error: unknown, what: string): PlugmqError {
  if (error instanceof PlugmqError) return error;
  const reason = describeConnectFailure(error, target(url)).reason;
  return new PlugmqError('CONNECTION', `${what} on PostgreSQL failed: ${redactCredentials(reason)}`, {
    cause: error,
  });
}

/** The pool for statements; its idle clients' errors (a server restart) are expected, not fatal. */
export async function openPool(config: PostgresConfig, logger: Logger): Promise<pg.Pool> {
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: config.connectTimeoutMs,
  });
  pool.on('error', (error) =>
    logger.debug({ error: describeError(error) }, 'postgres: idle connection lost'),
  );
  try {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`plugmq:${config.schema}`]);
      await client.query(setupSql(config.schema));
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => {});
    throw connectionError(config.url, error, 'connecting and creating the tables');
  }
  return pool;
}

/**
 * One connection that LISTENs on the schema's channel and hands each notification's payload (a
 * group) to `onNotify`. Reconnects forever; `onReconnect` runs after each new LISTEN, since
 * notifications sent while it was away are lost (the subscriptions' polling covers them too).
 */
export class Listener {
  private client: pg.Client | undefined;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly config: PostgresConfig,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly onNotify: (payload: string) => void,
    private readonly onReconnect: () => void,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.config.url,
      connectionTimeoutMillis: this.config.connectTimeoutMs,
    });
    client.on('notification', (message) => this.onNotify(message.payload ?? ''));
    // Until LISTEN is on, a failure rejects here and the caller's loop retries; after, `lost`.
    client.on('error', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    client.on('end', () => this.lost(client));
    this.failures = 0;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    client.end().catch(() => {});
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    while (!this.closed) {
      await delay(retryDelayMs(RECONNECT, ++this.failures));
      if (this.closed) return;
      try {
        await this.connect();
        this.onReconnect();
        return;
      } catch (error) {
        this.logger.debug({ error: describeError(error) }, 'postgres: LISTEN reconnect failed');
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
