import { inspect } from 'node:util';
import {
  acceptsConnections,
  describeConnectFailure,
  describeError,
  type Logger,
  PlugmqError,
  redactCredentials,
  tlsStalled,
  withDeadline,
} from '@plugmq/core/driver';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrls, type RedisConfig } from './options.js';
import { isSentinelUrl, sentinelDisplayUrl } from './sentinel.js';
import { isAbortedByClose } from './transient.js';

export type RedisClient = Redis | Cluster;

/** What a connection is for: shown in CLIENT LIST (connection name) and in logs. */
export type ClientRole = 'command' | 'reader' | 'replies' | 'publisher';

/**
 * Makes ioredis clients from the validated config: a plain client, a Cluster client seeded
 * with the URL's nodes, or a client of the master that Sentinels name. Every client reconnects by itself (back-off capped at
 * `reconnectMaxDelayMs`, never giving up) and keeps commands issued while disconnected in
 * ioredis' offline queue; a publish waiting there is bounded by core's publish deadline (see
 * publisher.ts), so it either gets stored or rejects, never resolves unstored.
 */
export class ClientFactory {
  readonly maskedUrl: string;
  private readonly urls: URL[];

  constructor(
    private readonly config: RedisConfig,
    private readonly logger: Logger,
  ) {
    // Behind Sentinels the URL names no data node: the master is asked of them on every connect.
    this.urls = config.sentinel ? [] : parseRedisUrls(config.url);
    this.maskedUrl =
      config.sentinel && !isSentinelUrl(config.url)
        ? sentinelDisplayUrl(config.sentinel)
        : redactCredentials(config.url);
  }

  get cluster(): boolean {
    return this.config.cluster;
  }

  /**
   * Whether the server behind the URL fails over by itself (a Cluster, or a master watched by
   * Sentinels): loops then ride through a failover's errors without warning (see FailureStreak).
   */
  get failsOver(): boolean {
    return this.config.cluster || this.config.sentinel !== undefined;
  }

  /** Holds the parsed URLs (with their password): inspect shows the masked URL only. */
  [inspect.custom](): string {
    return `ClientFactory { url: '${this.maskedUrl}', cluster: ${this.config.cluster} }`;
  }

  /** A new client; `lazyConnect` so the caller decides when (and how long) to wait for it. */
  create(role: ClientRole): RedisClient {
    const first = this.urls[0];
    if (!first) return this.watched(this.createForSentinel(role), role);
    const base: RedisOptions = {
      connectionName: `plugmq-${role}`,
      connectTimeout: this.config.connectTimeoutMs,
      // null: a command waits for the reconnect instead of failing after N retries; publishes are
      // bounded by their deadline instead, reads are retried by their loop.
      maxRetriesPerRequest: null,
      enableAutoPipelining: role === 'command',
      lazyConnect: true,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' || this.config.tls ? { tls: { ...this.config.tls } } : {}),
    };
    const retry = (times: number) => Math.min(this.config.reconnectMaxDelayMs, 50 * 2 ** Math.min(times, 10));
    let client: RedisClient;
    if (this.config.cluster) {
      client = new Cluster(
        this.urls.map((url) => ({ host: url.hostname, port: Number(url.port || 6379) })),
        {
          lazyConnect: true,
          enableAutoPipelining: role === 'command',
          clusterRetryStrategy: retry,
          enableOfflineQueue: true,
          redisOptions: base,
        },
      );
    } else {
      const db = first.pathname.length > 1 ? Number(first.pathname.slice(1)) : 0;
      client = new Redis({
        ...base,
        host: first.hostname,
        port: Number(first.port || 6379),
        db,
        retryStrategy: retry,
      });
    }
    return this.watched(client, role);
  }

  private watched(client: RedisClient, role: ClientRole): RedisClient {
    this.watch(client, role);
    // ioredis keeps the password in `client.options`: never let inspect/console.log show it.
    const kind = this.config.cluster ? 'Cluster' : this.config.sentinel ? 'Redis via Sentinel' : 'Redis';
    const shown = `ioredis ${kind} (${role}) ${this.maskedUrl}`;
    Object.defineProperty(client, inspect.custom, { value: () => shown, enumerable: false });
    return client;
  }

  /**
   * A client of the master the Sentinels name. When it fails, ioredis asks them again on every
   * reconnect and so lands on the promoted replica; `failoverDetector` also cuts a connection to
   * a master that was demoted while still alive (+switch-master), and a write still answered
   * READONLY by one reconnects at once (the write itself is sent again by the publisher).
   */
  private createForSentinel(role: ClientRole): Redis {
    const target = this.config.sentinel as NonNullable<RedisConfig['sentinel']>;
    const retry = (times: number) => Math.min(this.config.reconnectMaxDelayMs, 50 * 2 ** Math.min(times, 10));
    return new Redis({
      sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
      name: target.name,
      role: 'master',
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(this.config.sentinelPassword ? { sentinelPassword: this.config.sentinelPassword } : {}),
      failoverDetector: true,
      sentinelRetryStrategy: retry,
      retryStrategy: retry,
      reconnectOnError: (error) => error.message.startsWith('READONLY'),
      connectionName: `plugmq-${role}`,
      connectTimeout: this.config.connectTimeoutMs,
      maxRetriesPerRequest: null,
      enableAutoPipelining: role === 'command',
      lazyConnect: true,
    });
  }

  /**
   * Connects, or rejects with CONNECTION: at once when ioredis gives up (refused, unknown host,
   * refused login), else after `connectTimeoutMs` (ioredis retries meanwhile). The message says
   * why in the user's terms; ioredis itself only says "Connection is closed.".
   */
  async connect(client: RedisClient, role: ClientRole): Promise<void> {
    let lastError: unknown;
    const onError = (error: unknown) => {
      lastError = error;
    };
    client.on('error', onError);
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      await Promise.race([
        client.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            reject(lastError);
          }, this.config.connectTimeoutMs);
        }),
      ]);
    } catch (error) {
      client.disconnect();
      // ioredis rejects connect() with a bare "Connection is closed."; the cause came as an error event.
      const cause = timedOut || isAbortedByClose(error) ? (lastError ?? error) : error;
      throw await this.connectError(cause, role, timedOut);
    } finally {
      clearTimeout(timer);
      client.off('error', onError);
    }
  }

  private async connectError(cause: unknown, role: ClientRole, timedOut: boolean): Promise<PlugmqError> {
    const first = this.urls[0];
    if (!first) return this.sentinelConnectError(cause, role, timedOut);
    const host = first.hostname;
    const port = Number(first.port || 6379);
    const ms = this.config.connectTimeoutMs;
    let failure = cause === undefined ? undefined : describeConnectFailure(cause, { host, port });
    const tls = first.protocol === 'rediss:' || this.config.tls !== undefined;
    if (
      timedOut &&
      tls &&
      (failure === undefined || failure.kind === 'timeout') &&
      (await acceptsConnections(host, port, 1_000))
    ) {
      failure = tlsStalled(host, port, ms);
    }
    const where = timedOut ? `${this.maskedUrl} within ${ms} ms` : this.maskedUrl;
    const reason = failure?.reason ?? `no answer from ${host}:${port}`;
    return new PlugmqError(
      'CONNECTION',
      `cannot connect to Redis at ${where} (${role} connection): ${reason}`,
    );
  }

  private sentinelConnectError(cause: unknown, role: ClientRole, timedOut: boolean): PlugmqError {
    const target = this.config.sentinel as NonNullable<RedisConfig['sentinel']>;
    const ms = this.config.connectTimeoutMs;
    const reason = cause === undefined ? 'no answer' : redactCredentials(describeError(cause));
    return new PlugmqError(
      'CONNECTION',
      `cannot connect to the Redis master "${target.name}" through the Sentinels of ${this.maskedUrl}` +
        `${timedOut ? ` within ${ms} ms` : ''} (${role} connection): ${reason}`,
    );
  }

  /**
   * One warning per outage, one info per recovery; ioredis' own error events never go unhandled.
   * The outage is known by ioredis' `reconnecting` (it will dial again), not by `close`, which a
   * deliberate quit() or disconnect() on close() fires as well.
   */
  private watch(client: RedisClient, role: ClientRole): void {
    let down = false;
    let everReady = false;
    client.on('error', (error: unknown) => {
      if (down || !everReady) return;
      this.logger.warn(
        { url: this.maskedUrl, role, err: redactCredentials(describeError(error)) },
        'plugmq: Redis connection error',
      );
    });
    client.on('reconnecting', () => {
      if (!everReady || down) return;
      down = true;
      this.logger.warn({ url: this.maskedUrl, role }, 'plugmq: Redis connection lost; reconnecting');
    });
    client.on('ready', () => {
      if (down) this.logger.info({ url: this.maskedUrl, role }, 'plugmq: Redis connection back');
      down = false;
      everReady = true;
    });
  }
}

/** True for Redis' "the consumer group or the stream is gone" error (server came back empty). */
export function isNoGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

export function isBusyGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('BUSYGROUP');
}

type Arg = string | number | Buffer;

/** ioredis has a Buffer-reply variant of every command at runtime; these two lack typings. */
interface BufferCommands {
  xreadgroupBuffer(...args: Arg[]): Promise<unknown>;
  xautoclaimBuffer(...args: Arg[]): Promise<unknown>;
  evalshaBuffer(...args: Arg[]): Promise<unknown>;
  evalBuffer(...args: Arg[]): Promise<unknown>;
}

export function buffers(client: RedisClient): BufferCommands {
  return client as unknown as BufferCommands;
}

/**
 * Waits for `work` at most `ms`, then rejects: for clean-up steps (close, hand back) that must not
 * hang while Redis is away. What they leave undone is recovered by claiming later.
 */
export function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(work, ms, () => new Error(`${what} did not finish within ${ms} ms`));
}
