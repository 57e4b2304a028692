import {
  describeError,
  type Logger,
  PlugmqError,
  redactCredentials,
  WIRE,
  wirePriority,
} from '@plugmq/core/driver';
import {
  type FetchedBatch,
  type FetchedRecord,
  type GroupMember,
  type KafkaClient,
  memberOptions,
  type OutgoingRecord,
} from './connection.js';
import { type Due, DueHeap } from './due-heap.js';
import { OffsetCommitter } from './offset-committer.js';
import { DONE, PartitionTracker, type Slot } from './offset-tracker.js';
import type { KafkaConfig } from './options.js';
import type { Publisher } from './publisher.js';
import {
  bandTopics,
  DELAY_MOVER_GROUP,
  delayMoverGroup,
  delayTopic,
  type TopicRegistry,
  topicForPriority,
} from './topology.js';
import { DUE_HEADER } from './wire.js';

export interface DelayMoverDeps {
  readonly client: KafkaClient;
  readonly topics: TopicRegistry;
  readonly publisher: Publisher;
  readonly config: KafkaConfig;
  readonly logger: Logger;
}

/** One delayed record read ahead and not moved yet. */
interface Held extends Due {
  readonly record: FetchedRecord;
  readonly slot: Slot;
  readonly part: HeldPartition;
}

/** What the mover holds of one partition of the delay topic. */
interface HeldPartition {
  readonly tracker: PartitionTracker;
  /** Records read and not moved yet; at `delayReadAhead` the partition is paused. */
  held: number;
  /** Set while paused because the read-ahead window is full. */
  resume: (() => void) | undefined;
}

const MOVE_TIMEOUT_MS = 30_000;
/** A move that failed (broker away past the publish deadline) is tried again after this. */
const MOVE_RETRY_MS = 1_000;
/** Timers are re-armed at least this often, so a far due time never overflows setTimeout. */
const MAX_TIMER_MS = 60_000;

/**
 * Moves a type's delayed messages from `<type>.delay` to `<type>` when they are due, as a member
 * of the type's mover group (topology.ts): every group of the type then receives each delayed
 * message once, through the main topic, like any other.
 *
 * It reads ahead into a heap ordered by due time, up to `delayReadAhead` records per partition
 * (then the partition is paused until moves free room), so a later message with a shorter delay
 * is moved first. Offsets are committed only up to the first record not moved yet: records read
 * ahead but not moved when the mover stops or crashes are read again by the next mover (moved
 * at least once, never lost).
 */
export class DelayMover {
  readonly topic: string;
  private readonly groupId: string;
  private readonly readAhead: number;
  private member: GroupMember | undefined;
  private readonly trackers = new Map<string, PartitionTracker>();
  private readonly parts = new Map<string, HeldPartition>();
  private readonly heap = new DueHeap<Held>();
  private readonly commits: OffsetCommitter;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  /** Moves wait until the subscription that started the mover has joined its group (see open). */
  private opened = false;
  private stopping = false;
  private moving = 0;
  private onIdle: (() => void) | undefined;
  private failing = false;
  private finished: Promise<void> | undefined;

  constructor(
    readonly type: string,
    private readonly deps: DelayMoverDeps,
  ) {
    this.topic = delayTopic(type);
    this.groupId = deps.config.groupPrefix + delayMoverGroup(type);
    this.readAhead = deps.config.delayReadAhead;
    const names = { group: `${DELAY_MOVER_GROUP}${type}`, groupId: this.groupId };
    this.commits = new OffsetCommitter(this.trackers, () => this.member, deps, names);
  }

  /** Resolves once this member joined the mover group and received its assignment. */
  async start(): Promise<void> {
    const { client, topics, config } = this.deps;
    // The bands a due message may move to exist before the first move (none without priority).
    await topics.ensure([this.topic, ...bandTopics(this.type, config.priorityLevels)]);
    const member = client.member(memberOptions(config, this.groupId, config.partitions));
    this.member = member;
    // A new mover group must move what waited before any consumer ran: from the start.
    await member.subscribe([this.topic], true);
    let onJoined: () => void = () => {};
    const joined = new Promise<void>((resolve) => {
      onJoined = resolve;
    });
    const limit = config.rebalanceTimeoutMs + config.sessionTimeoutMs + config.connectTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PlugmqError('CONNECTION', `the delay mover of ${this.type} did not join within ${limit} ms`),
          ),
        limit,
      );
    });
    try {
      await Promise.race([
        Promise.all([
          member.run({
            onBatch: async (batch) => this.onBatch(batch),
            onJoin: (assignment) => {
              this.onJoin(assignment);
              onJoined();
            },
            onCrash: (error, restarting) => {
              this.deps.logger.warn(
                { type: this.type, err: redactCredentials(describeError(error)), restarting },
                'plugmq: kafka delay mover crashed',
              );
              // Read again from the committed offsets: what was held is moved by whoever reads it next.
              this.forget(() => false);
            },
          }),
          joined,
        ]),
        timeout,
      ]);
    } catch (error) {
      this.stopping = true;
      await member.disconnect().catch(() => {});
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Lets moves begin. The first subscription of the type joins its group meanwhile; moving
   * before it read its start offsets could move a due message past a new group's start.
   */
  open(): void {
    this.opened = true;
    this.arm();
  }

  /** Takes the batch into the heap at once: the client fetches on only after this returns. */
  private onBatch(batch: FetchedBatch): void {
    // A batch fetched before a seek is read again from the new position.
    if (this.stopping || batch.isStale()) return;
    const part = this.part(batch.topic, batch.partition);
    let last = -1;
    for (const record of batch.records) {
      if (record.offset < part.tracker.nextFetch) continue; // held already (re-fetched after a pause)
      if (part.held >= this.readAhead) {
        part.resume ??= batch.pause();
        break;
      }
      const due = Number(record.headers[DUE_HEADER]);
      // A record without a due time (not written by PlugMQ) is moved at once.
      this.heap.push({
        due: Number.isFinite(due) ? due : 0,
        seq: this.seq++,
        record,
        slot: part.tracker.dispatch(record.offset),
        part,
      });
      part.held++;
      last = record.offset;
    }
    if (last >= 0) batch.markFetched(last);
    this.arm();
  }

  private part(topic: string, partition: number): HeldPartition {
    const id = `${partition}:${topic}`;
    let part = this.parts.get(id);
    if (!part) {
      part = { tracker: new PartitionTracker(topic, partition), held: 0, resume: undefined };
      this.parts.set(id, part);
      this.trackers.set(id, part.tracker);
    }
    return part;
  }

  private current(part: HeldPartition): boolean {
    return this.parts.get(`${part.tracker.partition}:${part.tracker.topic}`) === part;
  }

  /** Drops the partitions `keep` rejects, and what the heap holds of them (never committed). */
  private forget(keep: (id: string) => boolean): void {
    for (const id of [...this.parts.keys()]) {
      if (keep(id)) continue;
      this.parts.delete(id);
      this.trackers.delete(id);
    }
    this.heap.retain((held) => this.current(held.part));
  }

  /**
   * After every join: partitions this member lost are dropped (their new owner reads them again
   * from the last commit); kept ones read on where this member stopped, not at the last commit.
   */
  private onJoin(assignment: Readonly<Record<string, readonly number[]>>): void {
    const owned = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) owned.add(`${partition}:${topic}`);
    }
    this.forget((id) => owned.has(id));
    for (const part of this.parts.values()) {
      const { topic, partition, nextFetch } = part.tracker;
      if (nextFetch >= 0) this.member?.seek({ topic, partition, offset: nextFetch });
    }
  }

  /** One timer, for the earliest due time held. */
  private arm(): void {
    if (!this.opened || this.stopping) return;
    const top = this.heap.peek();
    if (!top) return;
    if (this.timer && this.timerAt <= top.due) return;
    clearTimeout(this.timer);
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, top.due - Date.now()));
    this.timerAt = top.due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.moveDue();
    }, wait);
  }

  /** Moves everything due, earliest first (the publisher keeps that order per key). */
  private moveDue(): void {
    if (this.stopping) return;
    const now = Date.now();
    for (let top = this.heap.peek(); top && top.due <= now; top = this.heap.peek()) {
      this.heap.pop();
      if (this.current(top.part)) this.move(top);
    }
    this.arm();
  }

  private move(held: Held): void {
    this.moving++;
    let signal: AbortSignal | undefined;
    const context = {
      get signal() {
        signal ??= AbortSignal.timeout(MOVE_TIMEOUT_MS);
        return signal;
      },
    };
    this.deps.publisher
      .publish([this.mainRecord(held.record)], context)
      .then(
        () => {
          if (this.failing) {
            this.failing = false;
            this.deps.logger.info({ type: this.type }, 'plugmq: kafka delay mover moves again');
          }
          held.slot.state = DONE;
          if (!this.current(held.part)) return;
          const part = held.part;
          part.held--;
          if (part.resume && part.held < this.readAhead && !this.stopping) {
            part.resume();
            part.resume = undefined;
          }
          this.commits.schedule();
        },
        (error: unknown) => {
          if (!this.failing) {
            this.failing = true;
            this.deps.logger.warn(
              { type: this.type, err: redactCredentials(describeError(error)) },
              'plugmq: kafka delay mover could not move a due message; trying again',
            );
          }
          // Not committed past: a stop now hands it back to the next mover.
          if (this.stopping || !this.current(held.part)) return;
          held.due = Date.now() + MOVE_RETRY_MS;
          this.heap.push(held);
          this.arm();
        },
      )
      .finally(() => {
        if (--this.moving === 0) this.onIdle?.();
      });
  }

  /** The record as published to the type: same key, headers and timestamp, no due time. */
  private mainRecord(record: FetchedRecord): OutgoingRecord {
    const headers: Record<string, string> = {};
    for (const name in record.headers) {
      if (name === DUE_HEADER) continue;
      // The type header is only written where topic and type differ.
      if (name === WIRE.type && record.headers[name] === this.type) continue;
      headers[name] = record.headers[name]!;
    }
    return {
      topic: topicForPriority(
        this.type,
        wirePriority(record.headers[WIRE.priority]),
        this.deps.config.priorityLevels,
      ),
      partition: undefined,
      key: record.key,
      timestamp: String(record.timestamp),
      value: record.value,
      headers,
    };
  }

  /**
   * Stops reading and moving; moves in flight finish and are committed, the rest is handed back
   * (not committed) to the next mover of the type. Leaves the group in the background.
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const member = this.member;
    if (!member) {
      this.finished = Promise.resolve();
      return;
    }
    member.pause([{ topic: this.topic }]);
    this.finished = (async () => {
      if (this.moving > 0) {
        await new Promise<void>((resolve) => {
          this.onIdle = resolve;
        });
      }
      this.heap.clear();
      await this.commits.leave(member, 'delay mover');
    })();
  }

  /** Resolves once moves in flight are committed and the member left the group. */
  whenFinished(): Promise<void> {
    return this.finished ?? Promise.resolve();
  }
}
