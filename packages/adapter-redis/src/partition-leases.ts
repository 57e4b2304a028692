import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import { type RedisClient, within } from './connection.js';
import type { RedisConfig } from './options.js';
import { leaseKeys, partitionStreams } from './partitions.js';
import type { Reader, StreamRef } from './reader.js';
import { LuaScript, type Scripts } from './scripts.js';
import { againWhileTransient, FailureStreak } from './transient.js';

/**
 * One balance round of a (type, group), atomic (one script, one slot: every key has the type's
 * hash tag), on the server's clock (TIME), so process clocks never decide who owns what.
 * KEYS: the members sorted set, then the N leases. ARGV: consumer, leaseMs, '1' to join and take
 * free leases ('0' while stopping: renew only).
 * 1. drop members whose entry expired; refresh our own (score = now + leaseMs);
 * 2. fair = ceil(N / live members);
 * 3. renew our leases (PEXPIRE where the value is us);
 * 4. take free leases (SET NX PX), lowest index first, until we own `fair`.
 * Returns { fair, owned partitions, live members }. Surplus (owned > fair) is released by the caller,
 * gracefully (see handOver), so the script never takes a lease from anyone.
 */
const BALANCE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then redis.call('ZADD', KEYS[1], now + lease, ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], lease * 3)
local live = redis.call('ZCARD', KEYS[1])
if live < 1 then live = 1 end
local fair = math.ceil((#KEYS - 1) / live)
local owned = {}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], lease)
    owned[#owned + 1] = i - 2
  end
end
if ARGV[3] == '1' then
  for i = 2, #KEYS do
    if #owned >= fair then break end
    if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', lease) then owned[#owned + 1] = i - 2 end
  end
end
return {fair, owned, live}`;

/**
 * Rounds come this often for FAST_FOR_MS after a subscription starts or sees the group's
 * membership change (when the others join and shares move), then every leaseMs / 3.
 */
const FAST_MS = 100;
const FAST_FOR_MS = 5_000;

/**
 * Let go of leases, only those still ours (compare and delete). KEYS: the members set, then the
 * leases. ARGV: consumer, '1' to also leave the members set. Returns how many were deleted.
 */
const RELEASE = `local n = 0
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
if ARGV[2] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) end
return n`;

/**
 * Leave one entry of a partition pending for its next owner, with its delivery count reset (so
 * it keeps its attempt when claimed), only while the lease is still ours: once another
 * subscription owns the partition, claiming the entry back would strand it on a consumer that
 * is leaving. KEYS: the partition's stream (or its retry stream), the lease. ARGV: group,
 * consumer, id.
 */
const LEAVE_PENDING = new LuaScript(
  `if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
return #redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'RETRYCOUNT', 0, 'JUSTID')`,
  2,
);

export function leavePending(
  scripts: Scripts,
  stream: StreamRef,
  lease: string,
  group: string,
  consumer: string,
  id: string,
): Promise<number> {
  return scripts.run<number>(LEAVE_PENDING, [stream.key, lease, group, consumer, id]);
}

/** The subscription's connection and settings the leases use. */
export interface LeaseDeps {
  readonly client: RedisClient;
  readonly scripts: Scripts;
  readonly config: RedisConfig;
  readonly logger: Logger;
  readonly factory: { readonly failsOver: boolean };
}

/** What the leases need from their subscription. */
export interface LeaseHost {
  readonly group: string;
  readonly consumer: string;
  /** The reader of `type`'s streams (one per subscription; one per type on a cluster). */
  readerOf(type: string): Reader;
  /** Whether some entry of these streams is delivered and not settled yet (acks confirmed). */
  holds(streams: readonly StreamRef[]): boolean;
  /** Delay movers and trimming for these streams while owned; returns the release. */
  maintain(streams: readonly StreamRef[]): () => void;
}

interface Owned {
  readonly partition: number;
  readonly streams: readonly StreamRef[];
  readonly release: () => void;
  /** In the reader's stream set (false while suspended, or after a failed hand-over). */
  reading: boolean;
  releasing: boolean;
}

interface TypeLeases {
  readonly type: string;
  /** Members set, then the N leases (see leaseKeys). */
  readonly keys: string[];
  readonly owned: Map<number, Owned>;
  /** Local time by which our leases could have expired unless a balance succeeds. */
  lapseTimer: NodeJS.Timeout | undefined;
  suspended: boolean;
  readonly failures: FailureStreak;
  /** Live members at the last round: a change means shares move (rounds come fast for a while). */
  live: number;
}

/**
 * Who reads which partition (partitions.ts), the way Kafka assigns partitions, on leases: every
 * leaseMs / 3 (and at start, before reading) each subscription runs BALANCE for each of its
 * types. A subscription that joins counts in the fair share at once, so the others find
 * themselves over it at their next round and hand their highest partitions over gracefully:
 * stop reading them, wait until the reader's next read has started without them and every entry
 * delivered from them is settled (while renewing), then delete the lease if still ours. The new
 * owner takes it at its next round and claims whatever the group still has pending on it before
 * reading on (reader.ts, takeOver): a dead owner's partitions wait until their lease expires
 * (leaseMs), then go the same way.
 *
 * Local safety: a lease could expire leaseMs after the last renewal was sent. If no balance
 * succeeded by then (Redis away, or this process stalled) the partitions stop being read until
 * one does: another subscription may own them by then. Handlers already running finish.
 */
export class PartitionLeases {
  private readonly types: TypeLeases[];
  private timer: NodeJS.Timeout | undefined;
  private fastUntil = 0;
  private running = false;
  private taking = true;
  private closed = false;
  /** Each script with its number of keys: the members set and N leases, or one lease. */
  private readonly balanceScript: LuaScript;
  private readonly releaseAllScript: LuaScript;
  private readonly releaseOneScript: LuaScript;

  private readonly client: RedisClient;
  private readonly scripts: Scripts;
  private readonly config: RedisConfig;
  private readonly logger: Logger;

  constructor(
    private readonly host: LeaseHost,
    types: readonly string[],
    deps: LeaseDeps,
  ) {
    this.client = deps.client;
    this.scripts = deps.scripts;
    this.config = deps.config;
    this.logger = deps.logger;
    const { keyPrefix, partitions } = deps.config;
    this.balanceScript = new LuaScript(BALANCE, partitions + 1);
    this.releaseAllScript = new LuaScript(RELEASE, partitions + 1);
    this.releaseOneScript = new LuaScript(RELEASE, 2);
    this.types = types.map((type) => ({
      type,
      keys: leaseKeys(keyPrefix, type, host.group, partitions),
      owned: new Map(),
      lapseTimer: undefined,
      suspended: false,
      failures: new FailureStreak(deps.factory.failsOver),
      live: 0,
    }));
  }

  /** The first round (before reading; failures are retried as long as `stillTrying` says), then every leaseMs / 3. */
  async start(stillTrying: () => boolean): Promise<void> {
    for (const leases of this.types) {
      await againWhileTransient(() => this.balance(leases), stillTrying);
    }
    this.fastUntil = Date.now() + FAST_FOR_MS;
    this.schedule();
  }

  private get roundMs(): number {
    return Math.max(FAST_MS, Math.floor(this.config.leaseMs / 3));
  }

  private schedule(): void {
    if (this.closed) return;
    const delay = Date.now() < this.fastUntil ? Math.min(FAST_MS, this.roundMs) : this.roundMs;
    this.timer = setTimeout(() => {
      void this.tick().finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  /** Stopping: keep renewing what we own (handlers settle meanwhile), take nothing more. */
  stopTaking(): void {
    this.taking = false;
  }

  /** After settling: delete every lease still ours and leave the members set. */
  async releaseAll(): Promise<void> {
    this.stopTimers();
    for (const leases of this.types) {
      await this.scripts.run(this.releaseAllScript, [...leases.keys, this.host.consumer, '1']);
      for (const owned of leases.owned.values()) owned.release();
      leases.owned.clear();
    }
  }

  /** Ends renewing (what is left expires by itself after leaseMs). */
  close(): void {
    this.stopTimers();
    for (const leases of this.types) {
      for (const owned of leases.owned.values()) owned.release();
      leases.owned.clear();
    }
  }

  private stopTimers(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const leases of this.types) clearTimeout(leases.lapseTimer);
  }

  private async tick(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    try {
      for (const leases of this.types) {
        try {
          await within(this.balance(leases), this.roundMs, 'balancing');
          leases.failures.succeeded();
        } catch (error) {
          // Said at debug: a slow round is retried at once, and only a lapse (below) matters.
          leases.failures.failed(error);
          this.logger.debug(
            { group: this.host.group, type: leases.type, err: redactCredentials(describeError(error)) },
            'plugmq: a partition lease round failed; retrying',
          );
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async balance(leases: TypeLeases): Promise<void> {
    const sentAt = Date.now();
    const { leaseMs } = this.config;
    const [fair, owned, live] = await this.scripts.run<[number, number[], number]>(this.balanceScript, [
      ...leases.keys,
      this.host.consumer,
      leaseMs,
      this.taking ? '1' : '0',
    ]);
    if (this.closed) return;
    if (live !== leases.live) {
      leases.live = live;
      this.fastUntil = Date.now() + FAST_FOR_MS;
    }
    // Our leases live until at least sentAt + leaseMs (the script ran after sentAt); stop
    // reading a little before, in case no later round succeeds.
    clearTimeout(leases.lapseTimer);
    leases.lapseTimer = setTimeout(
      () => this.lapse(leases),
      Math.max(1, leaseMs - leaseMs / 5 - (Date.now() - sentAt)),
    );
    leases.lapseTimer.unref();
    const mine = new Set(owned.map(Number));
    const reader = this.host.readerOf(leases.type);
    for (const held of [...leases.owned.values()]) {
      // Expired and maybe taken: someone else may read it now. Stop at once (no hand-over).
      if (!mine.has(held.partition)) this.forget(leases, held);
    }
    for (const partition of mine) {
      if (leases.owned.has(partition)) continue;
      const streams = partitionStreams(this.config.keyPrefix, leases.type, this.host.group, partition);
      leases.owned.set(partition, {
        partition,
        streams,
        release: this.host.maintain(streams),
        reading: false,
        releasing: false,
      });
    }
    leases.suspended = false;
    const keeping = [...leases.owned.values()]
      .filter((held) => !held.releasing)
      .sort((a, b) => a.partition - b.partition);
    const surplus = this.taking ? Math.max(0, keeping.length - Number(fair)) : 0;
    // The highest ones go: subscriptions tend to keep the same low partitions.
    for (const held of keeping.slice(keeping.length - surplus)) void this.handOver(leases, held);
    let woken = false;
    for (const held of keeping.slice(0, keeping.length - surplus)) {
      if (held.reading || !this.taking) continue;
      held.reading = true;
      reader.takeOver(held.streams);
      woken = true;
    }
    if (woken) reader.wake(this.client);
  }

  /** No balance succeeded in time: the leases may be gone. Stop reading their partitions. */
  private lapse(leases: TypeLeases): void {
    if (this.closed || leases.suspended) return;
    leases.suspended = true;
    const reader = this.host.readerOf(leases.type);
    for (const held of leases.owned.values()) {
      if (!held.reading) continue;
      held.reading = false;
      reader.drop(held.streams);
    }
    this.logger.warn(
      { group: this.host.group, type: leases.type, failures: leases.failures.count },
      'plugmq: partition leases could not be renewed in time; their partitions are not read until a renewal succeeds',
    );
  }

  private forget(leases: TypeLeases, held: Owned): void {
    if (held.reading) this.host.readerOf(leases.type).drop(held.streams);
    held.reading = false;
    held.release();
    leases.owned.delete(held.partition);
  }

  /**
   * Graceful release of a partition we own beyond our share: nothing of it is read or running
   * any more when the lease goes, so the next owner starts exactly after what we settled.
   */
  private async handOver(leases: TypeLeases, held: Owned): Promise<void> {
    held.releasing = true;
    try {
      const reader = this.host.readerOf(leases.type);
      if (held.reading) {
        held.reading = false;
        const reads = reader.drop(held.streams);
        reader.wake(this.client);
        await reader.readStarted(reads);
      }
      while (this.host.holds(held.streams) && !this.closed) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (this.closed || leases.owned.get(held.partition) !== held) return;
      const [members] = leases.keys;
      const lease = leases.keys[held.partition + 1] as string;
      await this.scripts.run(this.releaseOneScript, [members as string, lease, this.host.consumer, '0']);
      if (leases.owned.get(held.partition) === held) {
        held.release();
        leases.owned.delete(held.partition);
      }
    } catch (error) {
      // Still ours: the next round hands it over again, or reads it again if it is in our share.
      this.logger.debug(
        { group: this.host.group, type: leases.type, partition: held.partition, err: describeError(error) },
        'plugmq: handing a partition over failed; trying again next round',
      );
    } finally {
      held.releasing = false;
    }
  }
}
