import {
  type ConnectFailure,
  describeConnectFailure,
  type Logger,
  moreTelling,
  PlugmqError,
  redactCredentials,
} from '@plugmq/core/driver';
import * as amqp from 'amqplib';
import type { RabbitMqConfig } from './options.js';
import { declareExchanges, type Topology } from './topology.js';

/** Something that must be (re)built on every new connection: the publisher, subscriptions, replies. */
export interface ConnectionUser {
  /** Called after each connect, once the exchanges exist. A rejection is logged; the user retries itself. */
  connected(connection: amqp.ChannelModel): Promise<void>;
  /** Called when the connection is lost, before reconnecting starts. */
  disconnected(): void;
}

function errorText(error: unknown): string {
  return redactCredentials(error instanceof Error ? error.message : String(error));
}

/** The host and port an amqp(s) URL dials, for "connection refused at host:port". */
function dialled(url: string): { host: string; port: number | string } {
  try {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672) };
  } catch {
    return { host: '?', port: '?' };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

/**
 * One AMQP connection that comes back: on loss it reconnects with back-off (doubling, ±20 %
 * jitter), rotating through the URL list so a cluster fails over, declares the exchanges again
 * and tells every registered user, which rebuilds its channels. Never gives up until `close()`.
 */
export class ConnectionManager {
  private connection: amqp.ChannelModel | undefined;
  private readonly users = new Set<ConnectionUser>();
  private readonly upWaiters = new Set<() => void>();
  private urlIndex = 0;
  private closed = false;
  private reconnecting = false;
  /** Connects since start; health reports it, tests read it. */
  connects = 0;
  lastError: string | undefined;
  blocked = false;

  constructor(
    private readonly config: RabbitMqConfig,
    private readonly topology: Topology,
    private readonly logger: Logger,
  ) {}

  get current(): amqp.ChannelModel | undefined {
    return this.connection;
  }

  get isUp(): boolean {
    return this.connection !== undefined;
  }

  get currentUrl(): string {
    return redactCredentials(this.config.urls[this.urlIndex] ?? '');
  }

  /**
   * First connect: keeps trying every URL until `connectTimeoutMs`, then rejects with CONNECTION
   * saying why (the most telling failure seen, not the last attempt's, which the deadline cut
   * short). A refused login or a failed TLS handshake cannot get better by waiting: at once.
   */
  async start(): Promise<void> {
    const deadline = Date.now() + this.config.connectTimeoutMs;
    let delayMs = this.config.reconnectInitialDelayMs;
    let failure: ConnectFailure | undefined;
    for (;;) {
      const url = this.config.urls[this.urlIndex] ?? '';
      try {
        await this.open(deadline - Date.now());
        return;
      } catch (error) {
        this.lastError = errorText(error);
        failure = moreTelling(failure, describeConnectFailure(error, dialled(url)));
        this.urlIndex = (this.urlIndex + 1) % this.config.urls.length;
        const left = deadline - Date.now();
        if (failure.fatal) {
          throw new PlugmqError(
            'CONNECTION',
            `cannot connect to RabbitMQ at ${redactCredentials(url)}: ${failure.reason}`,
          );
        }
        if (left <= 0 || this.closed) {
          throw new PlugmqError(
            'CONNECTION',
            `cannot connect to RabbitMQ at ${this.config.urls.map(redactCredentials).join(', ')} within ${this.config.connectTimeoutMs} ms: ${failure.reason}`,
          );
        }
        // A timer that holds the process: an application whose first step is this connect must
        // see the CONNECTION error, not exit quietly while nothing else keeps Node alive.
        await new Promise((resolve) => setTimeout(resolve, Math.min(left, delayMs)));
        delayMs = Math.min(this.config.reconnectMaxDelayMs, delayMs * 2);
      }
    }
  }

  /**
   * Resolves with the live connection; while reconnecting, waits until it is back, at most until
   * `signal` aborts (then rejects with the signal's reason or CONNECTION).
   */
  async waitUp(signal: AbortSignal): Promise<amqp.ChannelModel> {
    while (!this.closed) {
      if (this.connection) return this.connection;
      if (signal.aborted) break;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.upWaiters.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.upWaiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (this.closed) throw new PlugmqError('CLOSED', 'the RabbitMQ transport is closed');
    const reason: unknown = signal.reason;
    if (reason instanceof PlugmqError) throw reason;
    throw new PlugmqError('CONNECTION', `RabbitMQ is unreachable (${this.lastError ?? 'reconnecting'})`);
  }

  /** Registers a user; if connected, it is set up now. */
  async use(user: ConnectionUser): Promise<void> {
    this.users.add(user);
    if (this.connection) await user.connected(this.connection);
  }

  release(user: ConnectionUser): void {
    this.users.delete(user);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wake of [...this.upWaiters]) wake();
    const connection = this.connection;
    this.connection = undefined;
    if (connection) {
      try {
        await connection.close();
      } catch (error) {
        this.logger.debug({ err: errorText(error) }, 'plugmq: closing the RabbitMQ connection failed');
      }
    }
  }

  /** A short-lived channel for declarations; a failed declaration closes only it. */
  async withChannel<T>(work: (channel: amqp.Channel) => Promise<T>): Promise<T> {
    const connection = this.connection;
    if (!connection) throw new PlugmqError('CONNECTION', 'RabbitMQ connection is down; reconnecting');
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    try {
      return await work(channel);
    } finally {
      channel.close().catch(() => {});
    }
  }

  private connectUrl(timeoutMs: number): { url: string; socketOptions: Record<string, unknown> } {
    const raw = this.config.urls[this.urlIndex] ?? '';
    const url = new URL(raw);
    if (!url.searchParams.has('heartbeat'))
      url.searchParams.set('heartbeat', String(this.config.heartbeatSeconds));
    return {
      url: url.href,
      socketOptions: {
        ...(url.protocol === 'amqps:' ? (this.config.tls ?? {}) : {}),
        timeout: Math.max(1, timeoutMs),
        clientProperties: { connection_name: `plugmq ${this.topology.exchange}` },
      },
    };
  }

  private async open(timeoutMs: number): Promise<void> {
    const { url, socketOptions } = this.connectUrl(Math.min(timeoutMs, this.config.connectTimeoutMs));
    const connection = await amqp.connect(url, socketOptions);
    connection.on('error', (error: unknown) => {
      this.lastError = errorText(error);
      this.logger.warn({ url: this.currentUrl, err: this.lastError }, 'plugmq: RabbitMQ connection error');
    });
    connection.on('close', () => this.lost(connection));
    connection.on('blocked', (reason: string) => {
      this.blocked = true;
      this.logger.warn({ reason }, 'plugmq: RabbitMQ blocked publishing (resource alarm)');
    });
    connection.on('unblocked', () => {
      this.blocked = false;
    });
    try {
      const channel = await connection.createChannel();
      await declareExchanges(channel, this.topology);
      await channel.close();
    } catch (error) {
      connection.close().catch(() => {});
      throw error;
    }
    if (this.closed) {
      await connection.close().catch(() => {});
      return;
    }
    this.connection = connection;
    this.connects++;
    this.blocked = false;
    if (this.connects > 1) this.logger.info({ url: this.currentUrl }, 'plugmq: reconnected to RabbitMQ');
    for (const user of [...this.users]) {
      try {
        await user.connected(connection);
      } catch (error) {
        this.logger.warn({ err: errorText(error) }, 'plugmq: restoring after connect failed');
      }
    }
    for (const wake of [...this.upWaiters]) wake();
  }

  private lost(connection: amqp.ChannelModel): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    if (this.closed) return;
    this.logger.warn(
      { url: this.currentUrl, ...(this.lastError === undefined ? {} : { err: this.lastError }) },
      'plugmq: RabbitMQ connection lost; reconnecting',
    );
    for (const user of this.users) user.disconnected();
    // The node just lost is the likeliest to be down: try the next one first (a dead host can
    // take a whole connect timeout to refuse). With one URL this changes nothing.
    this.urlIndex = (this.urlIndex + 1) % this.config.urls.length;
    if (!this.reconnecting) void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    this.reconnecting = true;
    try {
      await this.reconnectLoop();
    } finally {
      // Cleared in the same tick the loop saw a live connection: a loss after this starts a new loop.
      this.reconnecting = false;
    }
  }

  private async reconnectLoop(): Promise<void> {
    let delayMs = this.config.reconnectInitialDelayMs;
    // Loops until a connection stays up through setup: one lost while users were being restored
    // is caught here, since `lost` does not start a second loop while this one runs.
    while (!this.closed && !this.connection) {
      await sleep(delayMs * (0.8 + Math.random() * 0.4));
      if (this.closed) return;
      try {
        await this.open(this.config.connectTimeoutMs);
      } catch (error) {
        this.lastError = errorText(error);
        this.logger.debug({ url: this.currentUrl, err: this.lastError }, 'plugmq: reconnect attempt failed');
        this.urlIndex = (this.urlIndex + 1) % this.config.urls.length;
        delayMs = Math.min(this.config.reconnectMaxDelayMs, delayMs * 2);
      }
    }
  }
}
