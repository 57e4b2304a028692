import { type Logger, PlugmqError, redactCredentials } from '@plugmq/core/driver';
import type { ChannelModel } from 'amqplib';
import type { ConnectionUser } from './connection.js';
import type { QueueType } from './options.js';
import { declareUnroutedQueue, type Topology } from './topology.js';

/** RabbitMQ's answer for a durable classic queue whose home node is down (404 NOT_FOUND). */
export function isHomeNodeDown(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return message.includes('NOT_FOUND') && message.includes('is down or inaccessible');
}

export function errorText(error: unknown): string {
  return redactCredentials(error instanceof Error ? error.message : String(error));
}

/** `live`: consuming; `pending`: being (re)declared; `down`: its home node is down. */
export type QueueState = 'live' | 'pending' | 'down';

interface Entry {
  readonly type: string;
  readonly queue: string;
  state: QueueState;
  reason: string | undefined;
}

/**
 * The state of every group queue this manager's subscriptions consume, so a publish to a type
 * can tell "no group" from "a group whose queue is unreachable". On a cluster, RabbitMQ routes
 * nothing to a classic queue whose home node is down: a publish is then returned as unroutable
 * (or silently reaches only the other groups), and would resolve as if every group had it.
 */
export class QueueStatus {
  private readonly entries = new Map<string, Entry>();
  private down = 0;

  set(key: string, type: string, queue: string, state: QueueState, reason?: string): void {
    const entry = this.entries.get(key);
    if (entry?.state === 'down') this.down--;
    if (state === 'down') this.down++;
    if (entry) {
      entry.state = state;
      entry.reason = reason;
    } else this.entries.set(key, { type, queue, state, reason });
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (entry?.state === 'down') this.down--;
    this.entries.delete(key);
  }

  /**
   * Why a confirmed publish of `type` must reject: a queue of it is down (its group misses the
   * message), or the message was returned while one is not consuming (it reached no group).
   * Undefined (resolve, or count as unrouted when returned) otherwise. O(1) when all is well.
   */
  refusal(type: string, returned: boolean): PlugmqError | undefined {
    if (this.down === 0 && !returned) return undefined;
    for (const entry of this.entries.values()) {
      if (entry.type !== type) continue;
      if (entry.state === 'down' || (returned && entry.state === 'pending')) {
        return new PlugmqError(
          'PUBLISH_FAILED',
          `the queue ${entry.queue} of a group consuming ${type} is unavailable (${entry.reason ?? 'being declared after a reconnect'}); the message may not have reached that group`,
        );
      }
    }
    return undefined;
  }

  /** Queue name → state, for health(). */
  snapshot(): Record<string, QueueState> {
    const out: Record<string, QueueState> = {};
    for (const entry of this.entries.values()) {
      if (out[entry.queue] !== 'down') out[entry.queue] = entry.state;
    }
    return out;
  }
}

const UNROUTED_RETRY_MS = 1_000;
const UNROUTED_RETRY_MAX_MS = 30_000;

/**
 * Declares `<exchange>.unrouted` on each connection, apart from everything else: when its home
 * node is down (classic queue on a cluster) only delayed messages that find no group are
 * affected, so it is retried in the background and never holds up connecting, publishing or
 * consuming. A quorum namespace declares it as a quorum queue, which has no single home node.
 */
export class UnroutedQueue implements ConnectionUser {
  private connection: ChannelModel | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    private readonly topology: Topology,
    private readonly queueType: QueueType,
    private readonly logger: Logger,
  ) {}

  async connected(connection: ChannelModel): Promise<void> {
    this.connection = connection;
    // Not awaited: publishing and consuming never wait for this queue.
    void this.declare(connection);
  }

  disconnected(): void {
    this.connection = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async declare(connection: ChannelModel): Promise<void> {
    try {
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      try {
        await declareUnroutedQueue(channel, this.topology, this.queueType);
      } finally {
        channel.close().catch(() => {});
      }
      if (this.failures > 0)
        this.logger.info({ queue: this.topology.unrouted }, 'plugmq: queue declared again');
      this.failures = 0;
    } catch (error) {
      if (this.connection !== connection) return;
      const fields = { queue: this.topology.unrouted, err: errorText(error) };
      const message =
        'plugmq: cannot declare the unrouted queue (a delayed message that finds no group is not kept while it is unreachable); retrying';
      // The first failure of a streak is worth a warning; its retries are not.
      if (this.failures === 0) this.logger.warn(fields, message);
      else this.logger.debug(fields, message);
      const delay = Math.min(UNROUTED_RETRY_MAX_MS, UNROUTED_RETRY_MS * 2 ** Math.min(this.failures++, 5));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.connection === connection) void this.declare(connection);
      }, delay).unref();
    }
  }
}
