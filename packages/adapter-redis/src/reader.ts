import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import type { Redis } from 'ioredis';
import { claimPage } from './claimer.js';
import { buffers, type ClientFactory, isNoGroup, type RedisClient, within } from './connection.js';
import { byPriority, type PriorityLevels, readHighestFirst } from './priority-levels.js';
import type { GroupKeys } from './topology.js';
import { FailureStreak } from './transient.js';

/** One stream a subscription reads: a type's stream, or its group's retry stream. */
export interface StreamRef {
  readonly key: string;
  readonly keys: GroupKeys;
  /** The group's retry stream: only this group reads it, so settled entries are deleted. */
  readonly retry: boolean;
}

/** What a reader needs from its subscription. */
export interface ReaderHost {
  readonly group: string;
  readonly consumer: string;
  readonly stopped: boolean;
  /** Resolves when the subscription may hold more entries; returns how many (0 once stopped). */
  capacity(): Promise<number>;
  dispatch(stream: StreamRef, id: string, fields: Buffer[] | null, attempt?: number): void;
  isInFlight(stream: StreamRef, id: string): boolean;
  /** Re-creates the groups (and streams) after Redis came back without them. */
  recreateGroups(streams: readonly StreamRef[]): Promise<void>;
  ack(stream: StreamRef, id: string): Promise<void>;
  /** Hands an entry back to the group unstarted (attempt unchanged). */
  handBack(stream: StreamRef, id: string, fields: Buffer[]): void;
  readonly levels: PriorityLevels;
}

/** Longest time a busy reader goes without looking for new priority levels. */
const CHECK_MS = 1_000;

export type ReadReply = [Buffer, [Buffer, Buffer[] | null][]][] | null;

/** A partition taken over: its streams' pending entries are claimed (from `cursor`) before any `>` read. */
interface Takeover {
  readonly streams: readonly StreamRef[];
  index: number;
  cursor: string;
}

/**
 * A blocking XREADGROUP loop on a connection of its own (never the publishing one). Standalone
 * Redis: one reader per subscription reads all its streams in one command; on a cluster one reader
 * per type (a type's keys share one slot, different types do not).
 */
export class Reader {
  private readonly connection: RedisClient;
  private readonly byKey = new Map<string, StreamRef>();
  private readonly streams: StreamRef[];
  private readonly types: string[];
  /** The keys every read names, in reading order (by priority once a level is read). */
  private keys: string[] = [];
  /** One `>` per key. */
  private fresh: string[] = [];
  private prioritised = false;
  /** Whether the last read left the streams empty (the next one may block); see `read`. */
  private drained = true;
  private checkedAt = 0;
  private clientId: number | undefined;
  /** After a reconnect: entries a lost XREADGROUP reply assigned to us are recovered first. */
  private recoverOwn = false;
  /** A Cluster's failover (CLUSTERDOWN, a node gone) is ridden through without warning. */
  private readonly failures: FailureStreak;
  private loop: Promise<void> | undefined;
  /** Partitions taken over whose pending entries are still to be claimed (see takeOver). */
  private readonly takeovers: Takeover[] = [];
  /** Reads started so far, and who waits for a read to start (see readStarted). */
  private reads = 0;
  private readWaiters: { after: number; resolve: () => void }[] = [];

  constructor(
    streams: readonly StreamRef[],
    private readonly host: ReaderHost,
    private readonly factory: ClientFactory,
    private readonly blockMs: number,
    private readonly logger: Logger,
  ) {
    this.streams = [];
    this.types = [...new Set(streams.map((stream) => stream.keys.type))];
    this.addStreams(streams);
    this.connection = factory.create('reader');
    this.failures = new FailureStreak(factory.failsOver);
    let readyBefore = false;
    this.connection.on('ready', () => {
      if (readyBefore) this.recoverOwn = true;
      readyBefore = true;
    });
    this.connection.on('close', () => {
      this.clientId = undefined;
    });
  }

  start(): void {
    this.connection.connect().catch(() => {
      // ioredis keeps retrying; the loop's commands wait in the offline queue meanwhile.
    });
    this.loop = this.run().finally(() => this.readsStart(Number.POSITIVE_INFINITY));
  }

  /**
   * A partition's streams join this reader (partition-leases.ts). Before they are read with `>`,
   * every entry of the group pending on them (a dead or departed owner's, or ours from before a
   * lapse) is claimed with XAUTOCLAIM min-idle 0 from 0-0 and dispatched in id order, in this
   * loop: those entries are older than anything unread, and core runs one key's deliveries in
   * dispatch order, so the key's order holds across the takeover. Not a second reader: claimed
   * entries must be dispatched before any newer entry of the partition.
   */
  takeOver(streams: readonly StreamRef[]): void {
    for (const stream of streams) this.byKey.set(stream.key, stream);
    this.takeovers.push({ streams, index: 0, cursor: '0-0' });
  }

  /**
   * A partition's streams leave the reads (its lease is handed over or lapsed). Entries of a read
   * already on its way are still dispatched (`byKey` keeps them). Returns the number of reads
   * started so far: `readStarted(n)` resolves once a read without these streams has started.
   */
  drop(streams: readonly StreamRef[]): number {
    const keys = new Set(streams.map((stream) => stream.key));
    for (let i = this.takeovers.length - 1; i >= 0; i--) {
      if ((this.takeovers[i] as Takeover).streams.some((stream) => keys.has(stream.key))) {
        this.takeovers.splice(i, 1);
      }
    }
    const kept = this.streams.filter((stream) => !keys.has(stream.key));
    this.streams.length = 0;
    this.addStreams(kept);
    return this.reads;
  }

  /** Resolves once more than `after` reads have started (or the loop ended). */
  readStarted(after: number): Promise<void> {
    if (this.reads > after) return Promise.resolve();
    return new Promise((resolve) => this.readWaiters.push({ after, resolve }));
  }

  /**
   * Ends a blocked read now so the stream set changes at once (standalone: CLIENT UNBLOCK, as in
   * stop). On a cluster the read ends within blockMs.
   */
  wake(command: RedisClient): void {
    if (this.factory.cluster || this.clientId === undefined) return;
    (command as Redis).client('UNBLOCK', this.clientId).catch(() => {});
  }

  private readsStart(count: number): void {
    this.reads = count;
    if (this.readWaiters.length === 0) return;
    const waiting = this.readWaiters;
    this.readWaiters = waiting.filter((waiter) => waiter.after >= count);
    for (const waiter of waiting) if (waiter.after < count) waiter.resolve();
  }

  /**
   * Ends the loop. Standalone: CLIENT UNBLOCK from `command` wakes the blocked read cleanly (the
   * server assigns it nothing), so no entry is left assigned to a read whose reply we drop.
   * Otherwise (cluster, or no id yet) the connection is cut; what a cut read was assigned is
   * found by the subscription's own-pending sweep at stop.
   */
  async stop(command: RedisClient): Promise<void> {
    if (!this.factory.cluster && this.clientId !== undefined) {
      try {
        await within((command as Redis).client('UNBLOCK', this.clientId), 500, 'CLIENT UNBLOCK');
        await within(this.loop as Promise<void>, 500, 'the unblocked read');
      } catch {
        // Redis away or slow: fall through to the disconnect.
      }
    }
    this.connection.disconnect();
    // ioredis never fails a command queued while it was reconnecting when disconnect() comes
    // then (no close event follows): do not wait for such a read forever.
    await within(this.loop as Promise<void>, 1_000, 'the reader to stop').catch(() => {});
  }

  /** Level streams are added while reading (see priority-levels.ts). */
  private addStreams(streams: readonly StreamRef[]): void {
    for (const stream of streams) {
      this.byKey.set(stream.key, stream);
      this.streams.push(stream);
    }
    this.prioritised = this.streams.some((stream) => stream.keys.level > 0);
    // A type without levels keeps today's order (stream, then the group's retry stream).
    this.keys = (this.prioritised ? byPriority(this.streams) : this.streams).map((stream) => stream.key);
    this.fresh = this.keys.map(() => '>');
  }

  private async run(): Promise<void> {
    while (!this.host.stopped) {
      const count = await this.host.capacity();
      if (count === 0 || this.host.stopped) break;
      try {
        if (this.recoverOwn) {
          this.recoverOwn = false;
          await this.recover(this.keys);
        }
        if (!this.factory.cluster && this.clientId === undefined) {
          this.clientId = Number(await (this.connection as Redis).client('ID'));
        }
        if (this.takeovers.length > 0) {
          await this.claimTakenOver(count);
          this.failures.succeeded();
          continue;
        }
        const [reply, grown] = await this.read(count);
        this.failures.succeeded();
        if (reply) this.dispatchAll(reply, false, grown);
      } catch (error) {
        if (this.host.stopped) break;
        await this.failed(error);
      }
    }
  }

  /**
   * One read: with levels, highest level first without blocking (READ_LEVELS), and only when all
   * are empty the blocking read over every stream. The SCARD of each type's level set goes right
   * behind a read that may block (the last one did not fill its COUNT) and at least every
   * CHECK_MS behind one that does not, on the same connection (answered with it, no round trip
   * of its own). Returns the reply and the types that got new levels: their entries in this
   * reply are handed back, so what waits on a higher level now comes first.
   */
  private async read(count: number): Promise<[ReadReply, ReadonlySet<string> | undefined]> {
    const { group, consumer } = this.host;
    this.readsStart(this.reads + 1);
    const check = this.drained || Date.now() - this.checkedAt >= CHECK_MS;
    if (check) this.checkedAt = Date.now();
    let reply: ReadReply = null;
    let sizes: Promise<number[] | undefined> | undefined;
    if (this.prioritised) {
      const read = readHighestFirst(this.connection, this.keys, group, consumer, count);
      if (check) sizes = this.levelSizes();
      reply = await read;
    }
    if (!reply) {
      const read = buffers(this.connection).xreadgroupBuffer(
        'GROUP',
        group,
        consumer,
        'COUNT',
        count,
        'BLOCK',
        this.blockMs,
        'STREAMS',
        ...this.keys,
        ...this.fresh,
      ) as Promise<ReadReply>;
      if (check) sizes = this.levelSizes();
      reply = await read;
    }
    let got = 0;
    for (const [, entries] of reply ?? []) got += entries.length;
    this.drained = got < count;
    return [reply, await this.grow(await sizes)];
  }

  /** One page (at most `count`, the free slots) of the first takeover's pending entries. */
  private async claimTakenOver(count: number): Promise<void> {
    const takeover = this.takeovers[0] as Takeover;
    const stream = takeover.streams[takeover.index] as StreamRef;
    // Min-idle 0: the lease says the previous owner is gone or has let go; no idle time to wait.
    // A claimed entry's lost deliveries count (a dead owner's: attempt + 1); one handed back
    // unstarted at a graceful stop had its count reset, so its attempt stays (subscription.ts).
    const next = await claimPage(
      this.connection,
      this.host,
      stream,
      0,
      takeover.cursor,
      count,
      0,
      this.logger,
    );
    if (this.takeovers[0] !== takeover) return; // dropped meanwhile
    if (next !== '0-0') {
      takeover.cursor = next;
      return;
    }
    takeover.index++;
    takeover.cursor = '0-0';
    if (takeover.index < takeover.streams.length) return;
    this.takeovers.shift();
    this.addStreams(takeover.streams);
  }

  private levelSizes(): Promise<number[] | undefined> {
    const { levels } = this.host;
    // Failing with the read (Redis away): the read's own error is the one handled.
    return Promise.all(this.types.map((type) => this.connection.scard(levels.levelsKey(type)))).catch(
      () => undefined,
    );
  }

  private async grow(sizes: number[] | undefined): Promise<ReadonlySet<string> | undefined> {
    if (sizes === undefined) return undefined;
    let grown: Set<string> | undefined;
    for (const [index, type] of this.types.entries()) {
      if (!this.host.levels.changed(type, sizes[index] ?? 0)) continue;
      const fresh = await this.host.levels.discover(type);
      if (fresh.length === 0) continue;
      this.addStreams(fresh);
      grown ??= new Set();
      grown.add(type);
    }
    return grown;
  }

  private dispatchAll(
    reply: NonNullable<ReadReply>,
    skipInFlight = false,
    handBack?: ReadonlySet<string>,
  ): number {
    let seen = 0;
    for (const [key, entries] of reply) {
      const stream = this.byKey.get(key.toString());
      if (!stream) continue;
      for (const [rawId, fields] of entries) {
        seen++;
        const id = rawId.toString();
        if (skipInFlight && this.host.isInFlight(stream, id)) continue;
        if (fields === null) {
          // Deleted while pending (only a lossy maxLen trims such entries): clear it from the PEL.
          void this.host.ack(stream, id).catch(() => {});
          continue;
        }
        // A partition's entries are never handed back: the retry stream would reorder their key.
        if (handBack?.has(stream.keys.type) && stream.keys.partition === undefined) {
          this.host.handBack(stream, id, fields);
        } else this.host.dispatch(stream, id, fields);
      }
    }
    return seen;
  }

  /** Our own pending entries that no handler holds (their read reply was lost): deliver them. */
  private async recover(keys: string[]): Promise<void> {
    const cursors = keys.map(() => '0');
    for (;;) {
      const reply = (await buffers(this.connection).xreadgroupBuffer(
        'GROUP',
        this.host.group,
        this.host.consumer,
        'COUNT',
        500,
        'STREAMS',
        ...keys,
        ...cursors,
      )) as ReadReply;
      if (!reply) return;
      let more = false;
      for (const [key, entries] of reply) {
        const index = keys.indexOf(key.toString());
        const last = entries[entries.length - 1];
        if (index >= 0 && last && entries.length >= 500) {
          cursors[index] = last[0].toString();
          more = true;
        }
      }
      this.dispatchAll(reply, true);
      if (!more) return;
    }
  }

  private async failed(error: unknown): Promise<void> {
    if (isNoGroup(error)) {
      this.logger.warn(
        { group: this.host.group, streams: this.streams.map((stream) => stream.key) },
        'plugmq: consumer group missing (Redis came back empty?); re-creating it',
      );
      try {
        await this.host.recreateGroups(this.streams);
        return;
      } catch (recreateError) {
        error = recreateError;
      }
    }
    const warn = this.failures.failed(error);
    this.recoverOwn = true;
    if (warn) {
      this.logger.warn(
        { group: this.host.group, err: redactCredentials(describeError(error)) },
        'plugmq: reading from Redis failed; retrying',
      );
    }
    await this.failures.pause();
  }
}
