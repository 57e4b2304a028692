import {
  delay,
  describeError,
  type Logger,
  OverdueWatch,
  PlugmqError,
  redactCredentials,
  type TransportPublishContext,
} from '@plugmq/core/driver';
import type { AcknowledgedPartition, KafkaClient, OutgoingRecord } from './connection.js';
import {
  backoffMs,
  isAcknowledged,
  Lane,
  PendingPublish,
  publishFailed,
  randomStart,
  type TopicState,
} from './lane.js';
import { keyPartition } from './partitioner.js';

/** Records per produce request; bounded so one request stays well under the broker's limits. */
const MAX_RECORDS_PER_SEND = 2_000;
/** Partitions added to a topic are picked up this long after the layout was read at the latest. */
const LAYOUT_MAX_AGE_MS = 300_000;

/**
 * Sends each partition's records independently and resolves a publish only once the partition
 * leader acknowledged every one of its records.
 *
 * Every record's partition is chosen here (by key, else round-robin over partitions that have a
 * leader and are not failing). Each partition has a lane; the lanes that are ready at once and
 * share a leader go out in one produce request, so a steady publisher still makes about one
 * request per broker per round trip. A send that fails puts its records back at the front of
 * their lanes, and the next attempt groups them by the leaders read after the failure: a dead
 * leader holds only the partitions it led, until the cluster elects new ones.
 *
 * kafkajs 2.2.4 can resolve a send without sending some partitions (its retry keeps the answers
 * of brokers that replied before, so a partition that moved to one of them is skipped: kafkajs
 * #1303, PR #1798). Each lane's partition must be in the send's acknowledgements; one that is not
 * is sent again.
 *
 * A publish rejects at its deadline (publishTimeoutMs or the caller's signal) even while its
 * send is in flight or queued behind one. Such a publish may still be stored if that send
 * succeeds later (at least once: a caller that retries may make a duplicate, never a loss);
 * nothing resolves unacknowledged.
 */
export class Publisher {
  private readonly topics = new Map<string, TopicState>();
  private readonly loading = new Map<string, Promise<void>>();
  /** Lanes with records to send, in the order they became ready. */
  private ready: Lane[] = [];
  private dispatchScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryTimerAt = 0;
  private closed = false;
  /** Every publish not yet settled, queued or in a send; deadlines attach once overdue. */
  private readonly waiting = new OverdueWatch<PendingPublish>('publish to kafka', (pending, error) =>
    pending.reject(error),
  );

  constructor(
    private readonly client: KafkaClient,
    private readonly logger: Logger,
  ) {}

  publish(records: readonly OutgoingRecord[], context: TransportPublishContext): Promise<void> {
    if (this.closed) return Promise.reject(new PlugmqError('CLOSED', 'the kafka transport is closed'));
    return new Promise<void>((resolve, reject) => {
      const pending = new PendingPublish(records, context, resolve, reject);
      this.waiting.add(pending);
      if (records.length === 0) {
        if (this.waiting.settle(pending)) resolve();
      } else if (!this.route(pending)) {
        void this.routeOnceLoaded(pending);
      }
    });
  }

  /** Rejects what is still queued (core waited for its publishes; what is left are lost causes). */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const closed = new PlugmqError('CLOSED', 'the kafka transport closed before this publish was sent');
    for (const state of this.topics.values()) {
      for (const lane of state.lanes) {
        if (!lane) continue;
        for (const pending of lane.pendings) if (this.waiting.settle(pending)) pending.reject(closed);
        lane.pendings = [];
        lane.records = [];
      }
    }
    this.waiting.close();
  }

  /** Puts each record in its partition's lane; false (nothing queued) while a topic's layout is unknown. */
  private route(pending: PendingPublish): boolean {
    const { records } = pending;
    for (const record of records) if (!this.topics.has(record.topic)) return false;
    for (const record of records) {
      const state = this.topics.get(record.topic)!;
      let partition = record.partition;
      if (partition === undefined) {
        partition = this.choosePartition(state, record.key);
        // The object was made for this publish (wire.ts) and already has the field.
        (record as { partition?: number }).partition = partition;
      }
      let lane = state.lanes[partition];
      if (!lane) {
        lane = new Lane(record.topic, partition);
        state.lanes[partition] = lane;
      }
      lane.pendings.push(pending);
      lane.records.push(record);
      this.markReady(lane);
    }
    return true;
  }

  private choosePartition(state: TopicState, key: string | undefined): number {
    const count = state.leaders.length;
    if (key !== undefined) return keyPartition(key, count);
    for (let tries = 0; tries < count; tries++) {
      const partition = state.next++ % count;
      if (state.leaders[partition]! >= 0 && !state.lanes[partition]?.failures) return partition;
    }
    return state.next++ % count;
  }

  /** The first publish to a topic waits for its layout; a broker that is away is asked again. */
  private async routeOnceLoaded(pending: PendingPublish): Promise<void> {
    for (let attempt = 0; this.waiting.has(pending); attempt++) {
      if (this.closed) {
        if (this.waiting.settle(pending))
          pending.reject(new PlugmqError('CLOSED', 'the kafka transport is closed'));
        return;
      }
      try {
        await Promise.all(
          pending.records.map((record) =>
            this.topics.has(record.topic) ? undefined : this.loadLayout(record.topic),
          ),
        );
        if (this.route(pending)) return;
      } catch (error) {
        if (!this.client.isRetriable(error) && this.waiting.settle(pending)) {
          pending.reject(publishFailed(error));
          return;
        }
        await delay(backoffMs(attempt));
      }
    }
  }

  /** Reads `topic`'s partitions and leaders (one request at a time per topic). */
  private loadLayout(topic: string): Promise<void> {
    let loading = this.loading.get(topic);
    if (!loading) {
      loading = this.client
        .topicLayout(topic)
        .then(({ leaders }) => {
          const state = this.topics.get(topic);
          if (state) {
            state.leaders = leaders;
            state.loadedAt = Date.now();
          } else {
            this.topics.set(topic, { lanes: [], leaders, loadedAt: Date.now(), next: randomStart() });
          }
        })
        .finally(() => this.loading.delete(topic));
      this.loading.set(topic, loading);
    }
    return loading;
  }

  /** Reads the leaders again after a failed send, then lets the waiting lanes go out regrouped. */
  private refreshLayout(topic: string): void {
    if (this.loading.has(topic)) return;
    this.loadLayout(topic).then(
      () => this.scheduleDispatch(),
      () => {}, // the next failure asks again; the lanes keep their backoff meanwhile
    );
  }

  private markReady(lane: Lane): void {
    if (!lane.queued) {
      lane.queued = true;
      this.ready.push(lane);
    }
    this.scheduleDispatch();
  }

  /**
   * At the end of this event-loop turn: every publish made in it (and while the last send was in
   * flight) joins one send, since kafkajs itself has no linger.
   */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => this.dispatch());
  }

  /** Sends the ready lanes that have no send in flight, one produce request per leader. */
  private dispatch(): void {
    this.dispatchScheduled = false;
    const lanes = this.ready;
    this.ready = [];
    const now = Date.now();
    let groups: Map<number, Lane[]> | undefined;
    let only: Lane | undefined;
    let onlyLeader = 0;
    for (const lane of lanes) {
      lane.queued = false;
      // A lane with a send in flight is marked ready again when that send settles.
      if (lane.records.length === 0 || lane.sentRecords) continue;
      if (lane.retryAt > now) {
        this.markReadyAt(lane, lane.retryAt);
        continue;
      }
      const state = this.topics.get(lane.topic)!;
      if (now - state.loadedAt > LAYOUT_MAX_AGE_MS) this.refreshLayout(lane.topic);
      const leader = state.leaders[lane.partition] ?? -1;
      // The common case is one lane, or lanes of one leader: no map.
      if (!only) {
        only = lane;
        onlyLeader = leader;
      } else if (!groups && leader === onlyLeader) {
        groups = new Map([[onlyLeader, [only, lane]]]);
      } else {
        groups ??= new Map([[onlyLeader, [only]]]);
        const group = groups.get(leader);
        if (group) group.push(lane);
        else groups.set(leader, [lane]);
      }
    }
    if (groups) for (const group of groups.values()) this.send(group);
    else if (only) this.send([only]);
  }

  private markReadyAt(lane: Lane, at: number): void {
    if (!lane.queued) {
      lane.queued = true;
      this.ready.push(lane);
    }
    if (this.retryTimer && this.retryTimerAt <= at) return;
    clearTimeout(this.retryTimer);
    this.retryTimerAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.scheduleDispatch();
      },
      Math.max(0, at - Date.now()),
    );
  }

  private send(group: Lane[]): void {
    let budget = MAX_RECORDS_PER_SEND;
    const sending: Lane[] = [];
    for (const lane of group) {
      // Lanes beyond one request's worth go in the next dispatch.
      if (budget <= 0) this.markReady(lane);
      else if (this.take(lane, budget)) {
        budget -= lane.sentRecords!.length;
        sending.push(lane);
      }
    }
    const first = sending[0];
    if (!first) return;
    let records = first.sentRecords!;
    if (sending.length > 1) {
      records = [];
      for (const lane of sending) for (const record of lane.sentRecords!) records.push(record);
    }
    this.client.send(records).then(
      (acknowledged) => this.sent(sending, acknowledged),
      (error: unknown) => this.failed(sending, error),
    );
  }

  /** Moves up to `budget` of the lane's records into its send; false when all had expired. */
  private take(lane: Lane, budget: number): boolean {
    const count = Math.min(lane.records.length, budget);
    let pendings = lane.pendings.splice(0, count);
    let records = lane.records.splice(0, count);
    // Publishes whose deadline passed while they waited were rejected already: not sent.
    let expired = 0;
    for (const pending of pendings) if (!this.waiting.has(pending)) expired++;
    if (expired > 0) {
      const keep = pendings.map((pending) => this.waiting.has(pending));
      pendings = pendings.filter((_, i) => keep[i]);
      records = records.filter((_, i) => keep[i]);
    }
    if (records.length === 0) {
      if (lane.records.length > 0) this.markReady(lane);
      return false;
    }
    lane.sentPendings = pendings;
    lane.sentRecords = records;
    return true;
  }

  private sent(lanes: Lane[], acknowledged: readonly AcknowledgedPartition[]): void {
    const unacknowledged: Lane[] = [];
    for (const lane of lanes) {
      if (!isAcknowledged(lane, acknowledged)) {
        unacknowledged.push(lane);
        continue;
      }
      const pendings = lane.sentPendings!;
      lane.sentPendings = undefined;
      lane.sentRecords = undefined;
      lane.failures = 0;
      for (const pending of pendings) {
        if (--pending.remaining === 0 && this.waiting.settle(pending)) pending.resolve();
      }
      if (lane.records.length > 0) this.markReady(lane);
    }
    if (unacknowledged.length > 0) {
      this.logger.warn(
        { partitions: unacknowledged.map((lane) => `${lane.topic}/${lane.partition}`) },
        'plugmq: kafka resolved a send without acknowledging these partitions; sending them again',
      );
      this.retry(unacknowledged);
    }
  }

  private failed(lanes: Lane[], error: unknown): void {
    if (!this.client.isRetriable(error) || this.closed) {
      const failure = publishFailed(error);
      for (const lane of lanes) {
        const pendings = lane.sentPendings!;
        lane.sentPendings = undefined;
        lane.sentRecords = undefined;
        for (const pending of pendings) if (this.waiting.settle(pending)) pending.reject(failure);
        if (lane.records.length > 0) this.markReady(lane);
      }
      return;
    }
    this.logger.warn(
      {
        err: redactCredentials(describeError(error)),
        partitions: lanes.map((lane) => `${lane.topic}/${lane.partition}`),
        attempt: lanes[0]!.failures,
      },
      'plugmq: kafka publish failed; retrying until the publish deadline',
    );
    // Nothing will answer these soon: attach their deadlines now.
    this.waiting.armAll();
    if (this.client.isFatalProducerError(error)) {
      this.client.resetProducer().then(
        () => this.retry(lanes),
        () => this.retry(lanes),
      );
    } else {
      this.retry(lanes);
    }
  }

  /** Puts each lane's sent records back at its front, to go again after a back-off. */
  private retry(lanes: Lane[]): void {
    const now = Date.now();
    const topics = new Set<string>();
    for (const lane of lanes) {
      lane.pendings = lane.sentPendings!.concat(lane.pendings);
      lane.records = lane.sentRecords!.concat(lane.records);
      lane.sentPendings = undefined;
      lane.sentRecords = undefined;
      lane.retryAt = now + backoffMs(lane.failures++);
      topics.add(lane.topic);
      this.markReadyAt(lane, lane.retryAt);
    }
    for (const topic of topics) this.refreshLayout(topic);
  }
}
