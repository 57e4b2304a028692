import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import { buffers, isNoGroup, type RedisClient } from './connection.js';
import type { RedisConfig } from './options.js';
import type { ReaderHost, StreamRef } from './reader.js';
import { FailureStreak } from './transient.js';
import { envelopeFromFields } from './wire.js';

interface ClaimHost extends ReaderHost {
  readonly free: number;
  readonly inFlight: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

type AutoClaimReply = [Buffer, [Buffer, Buffer[] | null][], Buffer[]?];

/**
 * Crash recovery. Every `claimIntervalMs` a subscription
 * 1. keeps its running entries alive: XCLAIM … JUSTID (to itself, min-idle 0) resets their idle
 *    time without counting a delivery, so a slow handler is not mistaken for a dead consumer;
 * 2. takes over entries idle for `claimMinIdleMs` on any consumer of its group (XAUTOCLAIM): a
 *    consumer that died (SIGKILL, lost host) leaves them there. Their delivery count (XPENDING)
 *    counts the lost deliveries as attempts: attempt = the entry's attempt + deliveries − 1.
 */
export class Claimer {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly cursors = new Map<string, string>();
  private readonly failures: FailureStreak;

  constructor(
    private readonly host: ClaimHost,
    private readonly streams: readonly StreamRef[],
    private readonly client: RedisClient,
    private readonly config: RedisConfig,
    private readonly logger: Logger,
  ) {
    this.failures = new FailureStreak(config.cluster || config.sentinel !== undefined);
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.config.claimIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    if (this.running || this.host.stopped) return;
    this.running = true;
    try {
      await this.heartbeat();
      for (const stream of this.streams) {
        if (this.host.stopped || this.host.free <= 0) break;
        await this.claim(stream);
      }
      this.failures.succeeded();
    } catch (error) {
      // Once per run of failures (not every interval); a Cluster's failover not at all.
      if (!this.host.stopped && !isNoGroup(error) && this.failures.failed(error)) {
        this.logger.warn(
          { group: this.host.group, err: redactCredentials(describeError(error)) },
          'plugmq: reclaiming idle entries failed; retrying next interval',
        );
      }
    } finally {
      this.running = false;
    }
  }

  private async heartbeat(): Promise<void> {
    const staleBefore = Date.now() - this.config.claimMinIdleMs / 3;
    for (const stream of this.streams) {
      const ids = [...(this.host.inFlight.get(stream.key)?.entries() ?? [])]
        .filter(([, since]) => since < staleBefore)
        .map(([id]) => id);
      if (ids.length === 0) continue;
      await this.client.xclaim(stream.key, this.host.group, this.host.consumer, 0, ...ids, 'JUSTID');
    }
  }

  private async claim(stream: StreamRef): Promise<void> {
    const cursor = this.cursors.get(stream.key) ?? '0-0';
    const { claimMinIdleMs } = this.config;
    const count = Math.max(1, this.host.free);
    const next = await claimPage(
      this.client,
      this.host,
      stream,
      claimMinIdleMs,
      cursor,
      count,
      1,
      this.logger,
    );
    this.cursors.set(stream.key, next);
  }
}

/**
 * One XAUTOCLAIM page of `stream` (entries idle `minIdleMs` on any consumer of the group, from
 * `cursor`, at most `count`), dispatched in id order except what this subscription already
 * holds. attempt = the entry's attempt + its lost deliveries (delivery count − 1, at least
 * `minLost`). Returns the next cursor ('0-0': the whole pending list was seen).
 */
export async function claimPage(
  client: RedisClient,
  host: ReaderHost,
  stream: StreamRef,
  minIdleMs: number,
  cursor: string,
  count: number,
  minLost: number,
  logger: Logger,
): Promise<string> {
  const reply = (await buffers(client).xautoclaimBuffer(
    stream.key,
    host.group,
    host.consumer,
    minIdleMs,
    cursor,
    'COUNT',
    count,
  )) as AutoClaimReply;
  const next = reply[0].toString();
  const entries = reply[1].filter(
    (entry): entry is [Buffer, Buffer[]] =>
      entry[1] !== null && !host.isInFlight(stream, entry[0].toString()),
  );
  if (entries.length === 0) return next;
  const first = (entries[0] as [Buffer, Buffer[]])[0].toString();
  const last = (entries[entries.length - 1] as [Buffer, Buffer[]])[0].toString();
  const pending = (await client.xpending(
    stream.key,
    host.group,
    first,
    last,
    entries.length + 1000,
    host.consumer,
  )) as [string, string, number, number][];
  const deliveries = new Map(pending.map(([id, , , delivered]) => [id, delivered]));
  for (const [rawId, fields] of entries) {
    const id = rawId.toString();
    const delivered = deliveries.get(id) ?? 2;
    const header = envelopeFromFields(fields, { type: stream.keys.type, id }).attempt;
    logger.debug(
      { group: host.group, stream: stream.key, id, deliveries: delivered },
      'plugmq: reclaimed an entry idle on another consumer',
    );
    host.dispatch(stream, id, fields, header + Math.max(minLost, delivered - 1));
  }
  return next;
}
