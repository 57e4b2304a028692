import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type DeliverFn,
  describeError,
  type Envelope,
  type Logger,
  redactCredentials,
  type SubscribeRequest,
  type TransportSubscription,
} from '@plugmq/core/driver';
import { AckBatch } from './ack-batch.js';
import { Claimer } from './claimer.js';
import { type ClientFactory, type RedisClient, within } from './connection.js';
import type { DelayMover } from './delay-mover.js';
import { EntryDelivery } from './entry-delivery.js';
import { createGroups, handBackOrphans, removeConsumer } from './group-membership.js';
import type { RedisConfig } from './options.js';
import { type LeaseHost, leavePending, PartitionLeases } from './partition-leases.js';
import { partitionStreams } from './partitions.js';
import { type LevelsHost, PriorityLevels } from './priority-levels.js';
import { Reader, type ReaderHost, type StreamRef } from './reader.js';
import type { Scripts } from './scripts.js';
import { groupKeys, leaseKey } from './topology.js';
import { againWhileTransient, isTransient } from './transient.js';
import type { Trimmer } from './trimmer.js';
import { envelopeFromFields, envelopeToFields } from './wire.js';

const noop = () => {};

export interface SubscriptionDeps {
  readonly client: RedisClient;
  readonly scripts: Scripts;
  readonly factory: ClientFactory;
  readonly config: RedisConfig;
  readonly logger: Logger;
  readonly movers: DelayMover;
  readonly trimmer: Trimmer;
}

/**
 * One transport subscription: a consumer (unique name) in the consumer group of every stream it
 * reads, the readers that fetch, and the settling of each delivery:
 * - ack: XACK, batched per event-loop turn (retry-stream entries are also deleted: only this
 *   group reads them);
 * - retry(delay): the REQUEUE script acks the entry and adds a copy with attempt + 1 to this
 *   group's retry stream (after `delay`, through its delay set): only the failing group sees it;
 * - release: the same with delay 0 and the attempt unchanged.
 */
export class RedisSubscription implements TransportSubscription, ReaderHost, LevelsHost, LeaseHost {
  readonly group: string;
  readonly consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  stopped = false;
  private readonly streams: StreamRef[] = [];
  private readonly readers: Reader[] = [];
  /** `partitions`: every partition's streams (read only while leased; the Claimer never sees them). */
  private readonly partitions: StreamRef[] = [];
  private readonly leases: PartitionLeases | undefined;
  private prefetch: number;
  private lowWater: number;
  readonly levels: PriorityLevels;
  /** Entries handed to core and not yet settled: stream key → id → local time delivered. */
  readonly inFlight = new Map<string, Map<string, number>>();
  /** Entries delivered and not settled yet, acks awaiting Redis' reply included. */
  private held = 0;
  /** Of `held`, the ones whose handler is done and whose XACK is queued or in flight. */
  private acking = 0;
  /** Acks in flight beyond which no more is read (Redis slow to answer, or away). */
  private readonly ackWindow: number;
  private waiters: (() => void)[] = [];
  private readonly releases: (() => void)[] = [];
  private readonly claimer: Claimer;
  private readonly acks = new AckBatch(
    (stream, ids) => this.ackAll(stream, ids),
    (stream, ids, error) => this.acked(stream, ids, error),
  );
  private cleanup: Promise<void> | undefined;
  private settledWaiter: (() => void) | undefined;
  /** Set once close stopped waiting: acks still failing then are not sent again. */
  private abandoned = false;

  constructor(
    private readonly request: SubscribeRequest,
    private readonly deliverFn: DeliverFn,
    private readonly deps: SubscriptionDeps,
  ) {
    this.group = request.group;
    this.prefetch = deps.config.prefetch ?? Math.max(4, request.concurrency * 2);
    // Read again once a few slots are free: one XREADGROUP per freed slot costs a syscall per
    // message, waiting for half the prefetch leaves handlers idle during the read's round trip.
    this.lowWater = lowWaterOf(this.prefetch);
    // An entry whose ack is on its way needs no handler: reading on during the XACK's round trip
    // keeps the handlers busy (counting it against prefetch measured ~20 % slower at
    // concurrency 16: reads then wait for every ack reply).
    this.ackWindow = this.prefetch * 4;
    for (const type of request.types) {
      const keys = groupKeys(deps.config.keyPrefix, type, request.group);
      this.streams.push({ key: keys.stream, keys, retry: false }, { key: keys.retry, keys, retry: true });
    }
    for (let partition = 0; partition < deps.config.partitions; partition++) {
      for (const type of request.types) {
        this.partitions.push(...partitionStreams(deps.config.keyPrefix, type, request.group, partition));
      }
    }
    for (const stream of [...this.streams, ...this.partitions]) this.inFlight.set(stream.key, new Map());
    if (this.partitions.length > 0) this.leases = new PartitionLeases(this, request.types, deps);
    this.claimer = new Claimer(this, this.streams, deps.client, deps.config, deps.logger);
    this.levels = new PriorityLevels(this, deps.client, deps.config.keyPrefix);
  }

  /** Creates the groups (so messages published from now on reach them), then starts reading. */
  async start(): Promise<void> {
    const from = this.request.startFrom === 'earliest' ? '0' : '$';
    // Every partition's group (same startFrom rule) before the type's: a keyed publish from now
    // on waits for the group whoever reads its partition later, and none copies the group from
    // the type's stream at '$' (PUBLISH_LEVEL) before an 'earliest' create reached its partition.
    await this.createGroups([...this.partitions, ...this.streams], from);
    this.acquire(this.streams);
    for (const type of this.request.types) await this.levels.discover(type);
    const { factory, config, logger } = this.deps;
    const sets = factory.cluster
      ? this.request.types.map((type) => this.streams.filter((stream) => stream.keys.type === type))
      : [this.streams];
    for (const streams of sets) this.readers.push(new Reader(streams, this, factory, config.blockMs, logger));
    // The first lease round before reading: owned partitions join the readers, claimed first.
    const until = Date.now() + config.connectTimeoutMs;
    await this.leases?.start(() => !this.stopped && Date.now() < until);
    for (const reader of this.readers) reader.start();
    this.claimer.start();
  }

  /** A priority level's streams (see priority-levels.ts): grouped, then read, claimed, trimmed. */
  async addStreams(streams: readonly StreamRef[]): Promise<void> {
    await this.createGroups(streams, this.request.startFrom === 'earliest' ? '0' : '$');
    for (const stream of streams) {
      this.streams.push(stream);
      this.inFlight.set(stream.key, new Map());
    }
    if (!this.stopped) this.acquire(streams);
    // Fetch no more than the handlers can start: what waits in Redis is then read, highest level
    // first, when a handler is free (prefetched entries would be handled in arrival order).
    this.prefetch = Math.min(this.prefetch, this.request.concurrency);
    this.lowWater = lowWaterOf(this.prefetch);
  }

  /** Delayed publishes and retries of these streams are moved when due, the streams trimmed. */
  private acquire(streams: readonly StreamRef[]): void {
    this.releases.push(this.maintain(streams));
  }

  // ---- LeaseHost ----

  maintain(streams: readonly StreamRef[]): () => void {
    const { movers, trimmer } = this.deps;
    const releases: (() => void)[] = [];
    for (const stream of streams) {
      if (stream.retry) releases.push(movers.acquire(stream.keys.retryDelay));
      else releases.push(movers.acquire(stream.keys.delay), trimmer.acquire(stream.key));
    }
    return () => {
      for (const release of releases) release();
    };
  }

  readerOf(type: string): Reader {
    const readers = this.readers;
    return (this.deps.factory.cluster ? readers[this.request.types.indexOf(type)] : readers[0]) as Reader;
  }

  holds(streams: readonly StreamRef[]): boolean {
    return streams.some((stream) => (this.inFlight.get(stream.key)?.size ?? 0) > 0);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.leases?.stopTaking();
    // Leases are released once everything is settled; should a handler never settle, renewing
    // ends when core gives up on it (closeTimeoutMs + its 5 s abort grace), and they lapse.
    const giveUpMs = (this.deps.config.closeTimeoutMs ?? 30_000) + 5_000 + this.closeLimitMs;
    if (this.leases) setTimeout(() => this.leases?.close(), giveUpMs).unref();
    this.wakeWaiters();
    this.claimer.stop();
    for (const release of this.releases.splice(0)) release();
    await Promise.all(this.readers.map((reader) => reader.stop(this.deps.client)));
    const limit = this.deps.config.connectTimeoutMs;
    await within(handBackOrphans(this, this.deps.client, this.streams), limit, 'handing back').catch(
      (error: unknown) => {
        this.deps.logger.warn(
          { group: this.group, err: redactCredentials(describeError(error)) },
          'plugmq: handing back fetched messages failed; the group reclaims them after claimMinIdleMs',
        );
      },
    );
    this.maybeCleanup();
  }

  get closeLimitMs(): number {
    return this.deps.config.connectTimeoutMs;
  }

  /**
   * Resolves once every settle is done (queued acks included, bounded: with Redis away they stay
   * pending and are claimed later) and the consumer removed. Transport close waits for it.
   */
  async closed(): Promise<void> {
    if (this.held > 0) {
      const allSettled = new Promise<void>((resolve) => {
        this.settledWaiter = resolve;
      });
      await within(allSettled, this.closeLimitMs, 'settling acks').catch(() => {});
    }
    this.abandoned = true;
    await this.cleanup;
    this.leases?.close();
  }

  // ---- ReaderHost ----

  /**
   * Resolves with how many entries to fetch next, once `lowWater` slots are free: reads come in
   * small batches instead of one XREADGROUP per settled message, while the handlers still have
   * entries queued during the read's round trip.
   */
  capacity(): Promise<number> {
    const free = this.free;
    if (free >= this.lowWater || this.stopped) return Promise.resolve(free);
    // Once woken, wait for the end of this event-loop turn: the handlers finishing on it free
    // their slots too, and one read fetches for all of them (instead of a read per few slots).
    return new Promise<void>((resolve) => this.waiters.push(resolve))
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.capacity());
  }

  get free(): number {
    if (this.stopped || this.acking >= this.ackWindow) return 0;
    return this.prefetch - this.held + this.acking;
  }

  isInFlight(stream: StreamRef, id: string): boolean {
    return this.inFlight.get(stream.key)?.has(id) ?? false;
  }

  dispatch(stream: StreamRef, id: string, fields: Buffer[] | null, attempt?: number): void {
    const decoded = envelopeFromFields(fields, { type: stream.keys.type, id });
    const envelope: Envelope = attempt === undefined ? decoded : { ...decoded, attempt };
    if (this.stopped) {
      // Fetched after stop: hand it back to the group untouched.
      void this.giveBack(stream, id, envelope).catch(() => {});
      return;
    }
    const ids = this.inFlight.get(stream.key) as Map<string, number>;
    if (ids.has(id)) return;
    ids.set(id, Date.now());
    this.held++;
    // Each settle method reports back itself (no promise chained per message on core's result).
    // A delivery core never settles (a handler that ignored close's abort) stays held: close then
    // waits `connectTimeoutMs` for it, and the group reclaims the entry later.
    this.deliverFn.submit(new EntryDelivery(this, stream, id, envelope));
  }

  handBack(stream: StreamRef, id: string, fields: Buffer[]): void {
    const envelope = envelopeFromFields(fields, { type: stream.keys.type, id });
    void this.requeue(stream, id, envelope, 0).catch(() => {});
  }

  /** A delivery was settled (or failed to settle: the entry then stays pending for recovery). */
  settled(stream: StreamRef, id: string): void {
    this.inFlight.get(stream.key)?.delete(id);
    this.held--;
    if (this.waiters.length > 0) this.wakeWaiters();
    if (this.stopped) this.maybeCleanup();
  }

  /**
   * Hands an unstarted entry back to the group, attempt unchanged: through the group's retry
   * stream, except a partition's entry, which stays pending (its delivery count reset, so it keeps
   * its attempt) for the partition's next owner to claim before anything newer of its key
   * (reader.ts, takeOver); through the retry stream it would be overtaken.
   */
  giveBack(stream: StreamRef, id: string, envelope: Envelope): Promise<void> {
    if (stream.keys.partition === undefined) return this.requeue(stream, id, envelope, 0);
    const { scripts, config } = this.deps;
    const lease = leaseKey(config.keyPrefix, stream.keys.type, this.group, stream.keys.partition as number);
    return leavePending(scripts, stream, lease, this.group, this.consumer, id).then(noop);
  }

  /** Queues a handled delivery's ack; the entry is settled once Redis confirmed it. */
  queueAck(stream: StreamRef, id: string): void {
    this.acking++;
    this.acks.add(stream, id);
    if (this.waiters.length > 0) this.wakeWaiters();
  }

  private acked(stream: StreamRef, ids: readonly string[], error: unknown): void {
    if (error !== undefined && !this.abandoned) {
      this.deps.logger.warn(
        {
          group: this.group,
          stream: stream.key,
          count: ids.length,
          err: redactCredentials(describeError(error)),
        },
        'plugmq: acknowledging failed; the entries stay pending and are redelivered after claimMinIdleMs',
      );
    }
    this.acking -= ids.length;
    for (const id of ids) this.settled(stream, id);
  }

  ack(stream: StreamRef, id: string): Promise<void> {
    return this.ackAll(stream, [id]);
  }

  /**
   * XACK is idempotent: one cut by a dropped connection, or refused by a Cluster failing over, is
   * simply sent again (an unsent ack would mean a redelivery after claimMinIdleMs).
   */
  private ackAll(stream: StreamRef, ids: string[]): Promise<void> {
    return this.ackOnce(stream, ids).then(noop, (error: unknown) =>
      isTransient(error)
        ? againWhileTransient(
            () => this.ackOnce(stream, ids),
            () => !this.abandoned,
          ).then(noop)
        : Promise.reject(error),
    );
  }

  private ackOnce(stream: StreamRef, ids: string[]): Promise<number> {
    const { client } = this.deps;
    return stream.retry
      ? this.deps.scripts.ackDelete(stream.key, this.group, ids)
      : client.xack(stream.key, this.group, ...ids);
  }

  async recreateGroups(streams: readonly StreamRef[]): Promise<void> {
    // The group existed before, so whatever reached the stream since the loss belongs to it.
    await this.createGroups(streams, '0');
  }

  // ---- internals ----

  async requeue(stream: StreamRef, id: string, envelope: Envelope, delayMs: number): Promise<void> {
    const { keys } = stream;
    // Safe to send again: once the first run acked the entry, a second one finds it settled (-1).
    const due = await againWhileTransient(() =>
      this.deps.scripts.requeue(
        [stream.key, keys.retry, keys.retryDelay.schedule, keys.retryDelay.data],
        this.group,
        id,
        Math.max(0, Math.round(delayMs)),
        stream.retry ? 1 : 0,
        envelopeToFields(envelope),
      ),
    );
    if (due > 0) this.deps.movers.wake(keys.retryDelay, due);
  }

  private createGroups(streams: readonly StreamRef[], from: '0' | '$'): Promise<void> {
    // Tried again for as long as the transport waits for a subscription's setup.
    const until = Date.now() + this.deps.config.connectTimeoutMs;
    return createGroups(
      this.deps.client,
      this.group,
      streams,
      from,
      () => !this.stopped && Date.now() < until,
    );
  }

  /** Once stopped and settled: forget this consumer (only when it holds no pending entry). */
  private maybeCleanup(): void {
    if (this.held > 0 || this.cleanup) return;
    this.settledWaiter?.();
    this.cleanup = within(
      // Leases after settling: the next owner starts exactly after what this one settled.
      (this.leases?.releaseAll() ?? Promise.resolve())
        .catch(noop)
        .then(() => removeConsumer(this, this.deps.client, [...this.streams, ...this.partitions])),
      this.deps.config.connectTimeoutMs,
      'removing the consumer',
    ).catch(() => {});
  }

  private wakeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Read again once a few slots are free (see the constructor). */
function lowWaterOf(prefetch: number): number {
  return Math.min(4, Math.max(1, Math.floor(prefetch / 2)));
}
