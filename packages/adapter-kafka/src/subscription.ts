import {
  type DeliverFn,
  describeError,
  type Envelope,
  type Logger,
  nextAttempt,
  PlugmqError,
  redactCredentials,
  type SubscribeRequest,
  type TransportSubscription,
} from '@plugmq/core/driver';
import {
  type FetchedBatch,
  type GroupMember,
  type KafkaClient,
  memberOptions,
  type TopicPartitionOffset,
} from './connection.js';
import { KafkaDelivery } from './delivery.js';
import { Slots } from './flow.js';
import { OffsetCommitter } from './offset-committer.js';
import { PartitionTracker, PENDING, type Slot, UNDONE } from './offset-tracker.js';
import type { KafkaConfig } from './options.js';
import { PriorityBands } from './priority-bands.js';
import type { Publisher } from './publisher.js';
import { bandTopics, retryTopic, type TopicRegistry } from './topology.js';
import { DUE_HEADER, envelopeToRecord, recordToEnvelope } from './wire.js';

export interface SubscriptionDeps {
  readonly client: KafkaClient;
  readonly topics: TopicRegistry;
  readonly publisher: Publisher;
  readonly config: KafkaConfig;
  readonly logger: Logger;
}

/** The default prefetch's floor (`prefetch` option: max(this, 2 × concurrency)). */
const MIN_PREFETCH = 32;
const RETRY_PUBLISH_TIMEOUT_MS = 30_000;

/**
 * One `consume` on Kafka: a member of the consumer group `<groupPrefix><group>` reading the
 * type topics and this group's retry topics.
 *
 * Each fetched batch (one partition) is handed to core in partition order, up to `prefetch`
 * unsettled messages per subscription; core's scheduler runs different keys at once and keeps
 * same-key order. The batch handler returns only when every message it handed out is settled,
 * then commits the offset below the first unsettled one. kafkajs re-joins a rebalancing group
 * only after running batch handlers return, so work in flight finishes and is committed before
 * its partition can move: nothing is committed unhandled, and a partition is never processed by
 * two members at once (per-key order holds across rebalances).
 */
export class KafkaSubscription implements TransportSubscription {
  private readonly groupId: string;
  private readonly typeOfTopic = new Map<string, string>();
  private readonly retryTopicOf = new Map<string, string>();
  private readonly slots: Slots;
  private readonly batches = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private member: GroupMember | undefined;
  private stopping = false;
  private finished: Promise<void> | undefined;
  private onJoined: (() => void) | undefined;
  private readonly trackers = new Map<string, PartitionTracker>();
  private readonly commits: OffsetCommitter;
  /** Start offsets of a new group's partitions, by `partition:topic` (see readPins). */
  private readonly pins = new Map<string, number>();
  private inFlight = 0;
  private onIdle: (() => void) | undefined;
  /** With `priorityLevels` only: what was fetched waits there, highest band handed out first. */
  private readonly bands: PriorityBands<KafkaDelivery> | undefined;

  constructor(
    private readonly request: SubscribeRequest,
    private readonly deliver: DeliverFn,
    private readonly deps: SubscriptionDeps,
  ) {
    this.groupId = deps.config.groupPrefix + request.group;
    const names = { group: request.group, groupId: this.groupId };
    this.commits = new OffsetCommitter(this.trackers, () => this.member, deps, names);
    for (const type of request.types) {
      const retry = retryTopic(type, request.group);
      this.typeOfTopic.set(type, type);
      this.typeOfTopic.set(retry, type);
      this.retryTopicOf.set(type, retry);
      for (const band of bandTopics(type, deps.config.priorityLevels)) this.typeOfTopic.set(band, type);
    }
    const { priorityLevels } = deps.config;
    this.bands =
      priorityLevels > 0
        ? new PriorityBands(request.types, priorityLevels, request.concurrency, (d) => this.deliver(d))
        : undefined;
    // Enough messages ahead even at concurrency 1 that handling goes on while kafkajs fetches the
    // next batch (it fetches only once every batch handler returned): with 8, a lone handler ran
    // dry during each fetch round trip (measured: ~6 % less throughput at concurrency 1 than 32).
    const prefetch = deps.config.prefetch ?? Math.max(MIN_PREFETCH, request.concurrency * 2);
    // Hand out a few at a time (see Slots) only while the prefetch leaves core a queue beyond the
    // running handlers, so handlers do not idle while `lowWater` slots free up.
    const lowWater = prefetch >= request.concurrency * 2 ? Math.min(4, Math.floor(prefetch / 2)) : 1;
    this.slots = new Slots(prefetch, lowWater);
  }

  /** Resolves once this member has joined the group and received its assignment. */
  async start(): Promise<void> {
    const { client, topics, config } = this.deps;
    // A type's band topics are read like it, created now so that a band's first record is not missed.
    const types = [...this.request.types, ...(this.bands?.topics() ?? [])];
    const retries = [...this.retryTopicOf.values()];
    await topics.ensure([...types, ...retries]);
    if (this.request.startFrom === 'latest') await this.readPins(types);
    // Every partition's batch can be handed out at once; `slots` bounds what is in flight.
    const member = client.member(
      memberOptions(config, this.groupId, Math.max(config.partitions, this.request.concurrency)),
    );
    this.member = member;
    await member.subscribe(types, this.request.startFrom === 'earliest');
    // Retry topics hold only this group's messages; a new member must see all of them.
    await member.subscribe(retries, true);
    const joined = new Promise<void>((resolve) => {
      this.onJoined = resolve;
    });
    const limit = config.rebalanceTimeoutMs + config.sessionTimeoutMs + config.connectTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PlugmqError('CONNECTION', `group ${this.request.group} was not joined within ${limit} ms`),
          ),
        limit,
      );
    });
    try {
      await Promise.race([
        Promise.all([
          member.run({
            onBatch: (batch) => this.track(this.onBatch(batch)),
            onJoin: (assignment) => {
              this.deps.logger.debug({ group: this.request.group, assignment }, 'plugmq: kafka group joined');
              this.onJoin(assignment);
            },
            onCrash: (error, restarting) => {
              this.deps.logger.warn(
                { group: this.request.group, err: redactCredentials(describeError(error)), restarting },
                'plugmq: kafka consumer crashed',
              );
              // The member re-joins from the committed offsets: what was handed out before the
              // crash is tracked no more (not committed; read again, at least once).
              this.trackers.clear();
            },
          }),
          joined,
        ]),
        timeout,
      ]);
    } catch (error) {
      await member.disconnect().catch(() => {});
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A group the broker has never seen starts at the end of each partition as of `consume`: the
   * end offsets are read before joining and applied (seek + commit) right after the join, before
   * `consume` resolves. Leaving it to the client's "latest" reset would resolve the end a little
   * later, skipping a message published right after `consume` resolved.
   */
  private async readPins(types: readonly string[]): Promise<void> {
    const { client } = this.deps;
    for (const topic of types) {
      const committed = await client.committedOffsets(this.groupId, topic);
      const unset = new Set(committed.filter((entry) => entry.offset < 0).map((entry) => entry.partition));
      if (unset.size === 0) continue;
      for (const { partition, offset } of await client.endOffsets(topic)) {
        if (unset.has(partition)) this.pins.set(`${partition}:${topic}`, offset);
      }
    }
  }

  /** Applies the pins of newly assigned partitions; resolves once committed (best effort). */
  private async applyPins(owned: ReadonlySet<string>): Promise<void> {
    const member = this.member;
    if (!member || this.pins.size === 0) return;
    const offsets: TopicPartitionOffset[] = [];
    for (const [id, offset] of this.pins) {
      if (!owned.has(id) || this.trackers.has(id)) continue;
      const colon = id.indexOf(':');
      const entry = { topic: id.slice(colon + 1), partition: Number(id.slice(0, colon)), offset };
      member.seek(entry);
      offsets.push(entry);
    }
    if (offsets.length === 0) return;
    try {
      // Not from inside the join event: kafkajs silently drops a commit made there.
      await new Promise((resolve) => setImmediate(resolve));
      await member.commit(offsets);
      for (const { topic, partition } of offsets) this.pins.delete(`${partition}:${topic}`);
    } catch (error) {
      this.deps.logger.debug(
        { group: this.request.group, err: describeError(error) },
        'plugmq: could not commit the start offsets of a new group',
      );
    }
  }

  private track(batch: Promise<void>): Promise<void> {
    this.batches.add(batch);
    return batch.finally(() => this.batches.delete(batch));
  }

  private tracker(topic: string, partition: number): PartitionTracker {
    const id = `${partition}:${topic}`;
    let tracker = this.trackers.get(id);
    if (!tracker) {
      tracker = new PartitionTracker(topic, partition);
      this.trackers.set(id, tracker);
    }
    return tracker;
  }

  /**
   * Hands the batch to core in partition order and returns as soon as it is handed out: kafkajs
   * fetches the next batch of every partition only after this returns, so waiting here for
   * handlers would let one slow message stall all partitions. The prefetch limit is the only
   * wait, and it heartbeats.
   */
  private async onBatch(batch: FetchedBatch): Promise<void> {
    if (this.stopping) return;
    const { topic, partition } = batch;
    const type = this.typeOfTopic.get(topic) ?? topic;
    const isRetryTopic = type !== topic && !this.bands?.isBandTopic(topic);
    const heartbeatMs = Math.max(50, Math.floor(this.deps.config.heartbeatIntervalMs / 2));
    const tracker = this.tracker(topic, partition);
    let last = -1;
    let lastBeat = Date.now();
    try {
      for (const record of batch.records) {
        // A seek (re-join, rewind) can only happen while this loop awaits; it checks isStale then.
        if (this.stopping) return;
        if (record.offset < tracker.nextFetch) continue; // already handed out before a re-join
        if (isRetryTopic) {
          const due = Number(record.headers[DUE_HEADER]);
          if (Number.isFinite(due) && due > Date.now()) {
            this.sleepPartition(batch, due);
            return;
          }
        }
        while (!this.slots.tryTake()) {
          await this.slots.wait(heartbeatMs);
          if (this.stopping || batch.isStale()) return;
          if (Date.now() - lastBeat >= heartbeatMs) {
            lastBeat = Date.now();
            // A rebalance error propagates to kafkajs, which re-joins; what was handed out stays tracked.
            await batch.heartbeat();
            if (this.stopping || batch.isStale()) return;
          }
        }
        const slot = tracker.dispatch(record.offset);
        last = record.offset;
        const delivery = new KafkaDelivery(recordToEnvelope(record, type, topic, partition), slot, this);
        this.inFlight++;
        if (this.bands) this.bands.push(delivery, this.bands.bandOf(topic, delivery.envelope.priority));
        // The delivery reports its settlement itself (delivery.ts): no promise per message.
        else this.deliver.submit(delivery);
      }
      if (this.bands && !isRetryTopic) this.bands.park(batch, this.bands.bandOf(topic, undefined));
    } finally {
      // Once per batch (kafkajs' resolveOffset is not cheap): the next fetch starts after `last`.
      if (last >= 0) batch.markFetched(last);
    }
  }

  settled(topic: string, partition: number, slot: Slot): void {
    const tracker = slot.tracker;
    if (slot.state === PENDING) slot.state = UNDONE;
    this.inFlight--;
    this.slots.give();
    if (slot.state === UNDONE && !this.stopping && this.trackers.get(`${partition}:${topic}`) === tracker) {
      // Read it again from here: a retry that could not be stored must not be skipped.
      tracker.rewind(slot.offset);
      this.member?.seek({ topic, partition, offset: slot.offset });
    }
    this.commits.schedule();
    if (this.inFlight === 0) this.onIdle?.();
  }

  /**
   * After every join: forget partitions this member lost (their unsettled messages are not
   * committed; the new owner reads them again), and keep reading kept partitions where this
   * member stopped instead of at the last commit (no duplicates of work still in flight).
   */
  private onJoin(assignment: Readonly<Record<string, readonly number[]>>): void {
    const owned = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) owned.add(`${partition}:${topic}`);
    }
    for (const [id, tracker] of this.trackers) {
      if (!owned.has(id)) {
        this.trackers.delete(id);
        continue;
      }
      if (tracker.nextFetch >= 0) {
        const colon = id.indexOf(':');
        this.member?.seek({
          topic: id.slice(colon + 1),
          partition: Number(id.slice(0, colon)),
          offset: tracker.nextFetch,
        });
      }
    }
    void this.applyPins(owned).finally(() => this.onJoined?.());
    // Offsets a commit could not take during the rebalance, on partitions this member kept.
    this.commits.schedule();
  }

  /** Pauses a retry partition until its head message is due, without blocking other partitions. */
  private sleepPartition(batch: FetchedBatch, dueAt: number): void {
    const resume = batch.pause();
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (!this.stopping) resume();
      },
      Math.max(0, dueAt - Date.now()),
    );
    this.timers.add(timer);
  }

  /** Stores a failed message in this group's retry topic with attempt + 1 and its due time. */
  async storeRetry(envelope: Envelope, delayMs: number): Promise<void> {
    const retried: Envelope = nextAttempt(envelope);
    const topic = this.retryTopicOf.get(envelope.type) ?? retryTopic(envelope.type, this.request.group);
    await this.deps.topics.ensure([topic]);
    let signal: AbortSignal | undefined;
    await this.deps.publisher.publish(
      [envelopeToRecord(retried, topic, { [DUE_HEADER]: String(Date.now() + delayMs) })],
      {
        get signal() {
          signal ??= AbortSignal.timeout(RETRY_PUBLISH_TIMEOUT_MS);
          return signal;
        },
      },
    );
  }

  /** Stops handing out messages at once; offsets are committed and the group left in the background. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // Fetched but never handed to core: not committed, read again by the next member.
    for (const delivery of this.bands?.clear() ?? []) delivery.settled();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const member = this.member;
    if (!member) {
      this.finished = Promise.resolve();
      return;
    }
    member.pause([...this.typeOfTopic.keys()].map((topic) => ({ topic })));
    this.finished = (async () => {
      await Promise.allSettled([...this.batches]);
      // Core releases what it has not started and waits for running handlers; then commit what they finished.
      if (this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.onIdle = resolve;
        });
      }
      await this.commits.leave(member, 'consumer');
    })();
  }

  /** Resolves when the last commit is done and the member left the group. */
  whenFinished(): Promise<void> {
    return this.finished ?? Promise.resolve();
  }

  /** Stopped, and still committing what it handled or leaving the group. */
  finishing(group: string): boolean {
    return this.stopping && this.request.group === group;
  }
}
