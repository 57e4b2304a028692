import {
  DEAD_LETTER_GROUP,
  type DeadLetterState,
  type Envelope,
  type GroupState,
  PlugmqError,
  type TransportInspection,
  type TransportInspectQuery,
} from '@plugmq/core/driver';
import type { Channel, GetMessage } from 'amqplib';
import type { ConnectionManager } from './connection.js';
import { type ManagedQueue, ManagementApi } from './management.js';
import type { RabbitMqConfig } from './options.js';
import {
  declareGroupQueues,
  type GroupQueueSettings,
  groupQueueNames,
  stripPartition,
} from './partitions.js';
import { groupQueueName, type Topology } from './topology.js';
import { envelopeFromMessage } from './wire.js';

interface Pair {
  readonly type: string;
  readonly group: string;
}

/** What a passive declare tells: ready messages and consumers; undefined when the queue does not exist. */
type Checked = { readonly ready: number; readonly consumers: number } | undefined;

/** Longest quorum queue a peek cycles through to keep its order (see peek). */
const QUORUM_CYCLE_MAX = 10_000;

function isNotFound(error: unknown): boolean {
  return (error instanceof Error ? error.message : String(error)).includes('NOT_FOUND');
}

/**
 * `inspect`, `ensureGroup` and `peek` on RabbitMQ. Each (group, type) is one queue
 * (topology.ts), so a group's backlog is its queue's ready count, read live with a passive
 * declare (`queue.declare passive`). AMQP cannot list queues, nor tell unacknowledged counts or
 * ages: with `managementUrl` those come from the management HTTP API (refreshed by the broker
 * every `collect_statistics_interval`, 5 s by default); without it, the groups reported are
 * `query.groups` plus those this manager consumed or ensured, and `inFlight` and
 * `oldestWaitingMs` are undefined. `retryBacklog` is always undefined: the retry wait queues are
 * shared by every group waiting the same delay (one queue per delay), so they cannot be split
 * by group.
 */
export class RabbitInspector {
  /** Queue name → pair, for every (type, group) this manager consumed or ensured. */
  private readonly known = new Map<string, Pair>();
  private readonly management: ManagementApi | undefined;
  private readonly settings: GroupQueueSettings;

  constructor(
    private readonly connections: ConnectionManager,
    private readonly topology: Topology,
    private readonly config: RabbitMqConfig,
  ) {
    this.management =
      config.managementUrl === undefined
        ? undefined
        : new ManagementApi(config.managementUrl, config.urls[0] ?? '', config.connectTimeoutMs);
    const { partitions, maxLength, queueType } = config;
    this.settings = { topology, partitions, maxLength, queueType };
  }

  /** The queues of a (group, type): one, or its partitions (whose figures inspect() adds up). */
  private queuesOf(group: string, type: string): string[] {
    return groupQueueNames(this.topology, group, type, this.config.partitions);
  }

  remember(type: string, group: string): void {
    this.known.set(groupQueueName(this.topology, group, type), { type, group });
  }

  async ensureGroup(type: string, group: string): Promise<void> {
    await this.connections.waitUp(AbortSignal.timeout(this.config.connectTimeoutMs));
    await this.connections.withChannel((channel) => declareGroupQueues(channel, this.settings, group, type));
    this.remember(type, group);
  }

  /**
   * The head of the group's queue: `basic.get` without ack, then every one of them requeued
   * with one `basic.nack`. A classic queue puts them back in their places; they come back
   * marked redelivered, and for the few milliseconds of the peek a consumer of the group gets
   * the messages behind them first. A priority queue's head is its highest priority first.
   *
   * A quorum queue (3.10) puts requeued messages at its back instead: so the peek goes on
   * through the whole queue (up to QUORUM_CYCLE_MAX messages) and requeues all of them, in
   * order, which rebuilds the original order; a message published meanwhile ends up before
   * them. A longer quorum queue has its first `limit` messages moved to its back.
   */
  async peek(type: string, group: string, limit: number): Promise<Envelope[]> {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new PlugmqError('INVALID_ARGUMENT', `peek limit must be a positive integer (got ${limit})`);
    }
    await this.connections.waitUp(AbortSignal.timeout(this.config.connectTimeoutMs));
    const queues = this.queuesOf(group, type);
    if (queues.length === 1) return this.peekQueue(queues[0] ?? '', type, limit);
    // Partitions: the head of each, merged oldest first (publish time, then partition order).
    const heads: Envelope[] = [];
    for (const queue of queues) heads.push(...(await this.peekQueue(queue, type, limit)));
    return heads.sort((a, b) => a.timestamp - b.timestamp).slice(0, limit);
  }

  private peekQueue(queue: string, type: string, limit: number): Promise<Envelope[]> {
    return this.connections.withChannel(async (channel) => {
      const envelopes: Envelope[] = [];
      let last: GetMessage | undefined;
      try {
        let take = limit;
        if (this.config.queueType === 'quorum') {
          const { messageCount } = await channel.checkQueue(queue);
          if (messageCount <= QUORUM_CYCLE_MAX) take = Math.max(limit, messageCount);
        }
        for (let taken = 0; taken < take; taken++) {
          const message = await channel.get(queue, { noAck: false });
          if (message === false) break;
          last = message;
          if (envelopes.length < limit) envelopes.push(envelopeFromMessage(message, type));
        }
      } catch (error) {
        if (!isNotFound(error)) throw error;
      } finally {
        if (last) channel.nack(last, true, true);
      }
      return envelopes;
    });
  }

  async inspect(query: TransportInspectQuery): Promise<TransportInspection> {
    const wanted = query.types === undefined ? undefined : new Set(query.types);
    const groups = new Map<string, Pair>();
    const deadLetters = new Map<string, string>();
    const add = (pair: Pair, listed: boolean): void => {
      const queue = groupQueueName(this.topology, pair.group, pair.type);
      if (pair.group === DEAD_LETTER_GROUP) deadLetters.set(queue, pair.type);
      else if (!listed || wanted === undefined || wanted.has(pair.type)) groups.set(queue, pair);
    };
    for (const pair of this.known.values()) add(pair, true);
    for (const pair of query.groups ?? []) add(pair, false);
    for (const type of query.deadLetterTypes) add({ type, group: DEAD_LETTER_GROUP }, false);
    const managed = new Map<string, ManagedQueue>();
    if (this.management) {
      const prefix = `${this.topology.exchange}:`;
      for (const entry of await this.management.queues(prefix)) {
        managed.set(entry.name, entry);
        const pair = this.pairOf(entry.name, prefix);
        if (pair) add(pair, true);
      }
    }
    await this.connections.waitUp(AbortSignal.timeout(this.config.connectTimeoutMs));
    const queuesOf = new Map<string, string[]>();
    for (const [queue, { type, group }] of groups) queuesOf.set(queue, this.queuesOf(group, type));
    for (const [queue, type] of deadLetters) queuesOf.set(queue, this.queuesOf(DEAD_LETTER_GROUP, type));
    const checked = await this.check([...queuesOf.values()].flat());
    const now = Date.now();
    const total = (queue: string) => combine(queuesOf.get(queue) ?? [], checked, managed, now);
    const groupStates: GroupState[] = [];
    for (const [queue, { type, group }] of groups) {
      const state = total(queue);
      if (state === undefined) continue; // no such queue: the broker has no such group
      groupStates.push({
        type,
        group,
        backlog: state.ready,
        inFlight: state.unacknowledged,
        oldestWaitingMs: state.oldestMs,
        consumers: state.consumers,
        retryBacklog: undefined,
      });
    }
    const deadLetterStates: DeadLetterState[] = [];
    for (const [queue, type] of deadLetters) {
      const state = total(queue);
      deadLetterStates.push({
        type,
        // Dead letters being replayed (unacknowledged) are still stored until their ack.
        count: state === undefined ? 0 : state.ready + (state.unacknowledged ?? 0),
        oldestAgeMs: state?.oldestMs,
      });
    }
    return { groups: groupStates, deadLetters: deadLetterStates };
  }

  /** `<exchange>:<group>:<type>` back to its pair; undefined for hashed (over-long) names. */
  private pairOf(queue: string, prefix: string): Pair | undefined {
    const rest = stripPartition(queue.slice(prefix.length));
    const known = this.known.get(prefix + rest);
    if (known) return known;
    const colon = rest.indexOf(':');
    if (colon <= 0) return undefined;
    const type = rest.slice(colon + 1);
    if (type.length === 0 || type.startsWith('~')) return undefined;
    return { group: rest.slice(0, colon), type };
  }

  /**
   * Passive declares, one after the other on one channel (amqplib runs a channel's calls in
   * turn anyway). A missing queue closes the channel (404): the next check opens another.
   */
  private async check(queues: readonly string[]): Promise<Map<string, Checked>> {
    const out = new Map<string, Checked>();
    const connection = this.connections.current;
    if (queues.length === 0) return out;
    if (!connection) throw new PlugmqError('CONNECTION', 'RabbitMQ connection is down; reconnecting');
    let channel: Channel | undefined;
    try {
      for (const queue of queues) {
        if (!channel) {
          channel = await connection.createChannel();
          channel.on('error', () => {});
        }
        try {
          const { messageCount, consumerCount } = await channel.checkQueue(queue);
          out.set(queue, { ready: messageCount, consumers: consumerCount });
        } catch (error) {
          if (!isNotFound(error)) throw error;
          out.set(queue, undefined);
          channel = undefined;
        }
      }
    } finally {
      channel?.close().catch(() => {});
    }
    return out;
  }
}

interface Combined {
  readonly ready: number;
  readonly consumers: number;
  readonly unacknowledged: number | undefined;
  readonly oldestMs: number | undefined;
}

/**
 * The figures of a (group, type) from its queues: counts added up, the oldest age the largest.
 * Consumers are the most any partition has: every subscription of the group consumes each.
 * Undefined when its first queue does not exist.
 */
function combine(
  queues: readonly string[],
  checked: Map<string, Checked>,
  managed: Map<string, ManagedQueue>,
  now: number,
): Combined | undefined {
  if (checked.get(queues[0] ?? '') === undefined) return undefined;
  let ready = 0;
  let consumers = 0;
  let unacknowledged: number | undefined = 0;
  let oldestMs: number | undefined;
  for (const queue of queues) {
    const state = checked.get(queue);
    if (state === undefined) continue;
    const extra = managed.get(queue);
    ready += state.ready;
    consumers = Math.max(consumers, state.consumers);
    const unacked = extra?.unacknowledged;
    unacknowledged =
      unacknowledged === undefined || unacked === undefined ? undefined : unacknowledged + unacked;
    const age = oldest(state.ready, extra, now);
    if (age !== undefined) oldestMs = Math.max(oldestMs ?? 0, age);
  }
  return { ready, consumers, unacknowledged, oldestMs };
}

/** Undefined when nothing waits (as on every driver), or when the management API cannot tell. */
function oldest(ready: number, extra: ManagedQueue | undefined, now: number): number | undefined {
  if (ready === 0) return undefined;
  const head = extra?.headTimestampMs;
  return head === undefined ? undefined : Math.max(0, now - head);
}
