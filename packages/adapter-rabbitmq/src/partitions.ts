import { createHash } from 'node:crypto';
import { DEAD_LETTER_GROUP, type Envelope, PlugmqError, partitionOfKey } from '@plugmq/core/driver';
import type { Channel } from 'amqplib';
import type { QueueType } from './options.js';
import { declareGroupQueue, groupQueueArguments, groupQueueName, type Topology } from './topology.js';

// The option's bounds and the key hash live in core's driver kit (one copy for every driver).
export { MAX_PARTITIONS, partitionOfKey, partitionsOption } from '@plugmq/core/driver';

/**
 * Ordering by key (`partitions: N`). Each (group, type) has N partition queues declared with
 * `x-single-active-consumer`, so one consumer at a time handles a partition; the publisher puts
 * a key's messages in one partition, so they reach that consumer in publish order, where core's
 * per-key lanes keep them in order.
 *
 * ```
 *  publish(type, header plugmq-partition: i) ─► <ex> ─ type ─► <ex>.partitions:<type> (headers) ─ i ─► <ex>:<group>:<type>[:i]
 *                                      <ex>.delayed ─ type ─┘   │ no partition header (a publisher without `partitions`)
 *                                                               └► AE <ex>.partitions:<type>:of-<N> (fanout) ─► partition 0 of every group
 * ```
 *
 * The partition travels in a header rather than the routing key so that delayed messages (which
 * keep their headers through the delay queue) and every group get it unchanged, and so groups
 * without partitions, bound to `<ex>` by type, still get every message. The alternate exchange's
 * name carries N: RabbitMQ refuses (PRECONDITION_FAILED) to declare the type's exchange with
 * another one, so two managers with another `partitions` for one type fail instead of silently
 * putting a key in two partitions. Partition 0 keeps the name of an unpartitioned group queue
 * and differs from it in `x-single-active-consumer`: a group cannot mix both either.
 */

/** Not `x-…`: RabbitMQ's headers exchange ignores `x-` headers when matching. */
export const PARTITION_HEADER = 'plugmq-partition';

/**
 * Dead letters at rest stay in one queue per type even where groups are partitioned: browse
 * and replay read them oldest first, which only one queue can tell. Replay republishes each to
 * its original type, where it is partitioned by its key again.
 */
export function partitionsOf(group: string, partitions: number): number {
  return group === DEAD_LETTER_GROUP ? 0 : partitions;
}

/** `<ex>:<group>:<type>` for partition 0, `<ex>:<group>:<type>:<i>` for the others (types cannot contain ':'). */
export function partitionQueueName(
  topology: Topology,
  group: string,
  type: string,
  partition: number,
): string {
  if (partition === 0) return groupQueueName(topology, group, type);
  const name = `${topology.exchange}:${group}:${type}:${partition}`;
  if (name.length <= 255) return name;
  const digest = createHash('sha256').update(`${group}:${type}`).digest('hex').slice(0, 32);
  return `${topology.exchange}:${group.slice(0, 100)}:~${digest}:${partition}`;
}

/** Every queue of a (group, type): one, or one per partition. */
export function groupQueueNames(
  topology: Topology,
  group: string,
  type: string,
  partitions: number,
): string[] {
  const count = partitionsOf(group, partitions);
  if (count === 0) return [groupQueueName(topology, group, type)];
  return Array.from({ length: count }, (_, index) => partitionQueueName(topology, group, type, index));
}

/** The (group, type) a partition queue `<…>:<type>:<i>` belongs to is its partition 0's. */
export function stripPartition(queueRest: string): string {
  // `<group>:<type>:<i>`: groups and types cannot contain ':', so only a partition adds a second one.
  return queueRest.replace(/^([^:]*:[^:]*):\d+$/, '$1');
}

function shortName(name: string): string {
  if (name.length <= 255) return name;
  return `${name.slice(0, 200)}~${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
}

export function partitionExchangeName(topology: Topology, type: string): string {
  return shortName(`${topology.exchange}.partitions:${type}`);
}

function unkeyedExchangeName(topology: Topology, type: string, partitions: number): string {
  return shortName(`${topology.exchange}.partitions:${type}:of-${partitions}`);
}

/** The type's partition exchange (whose alternate exchange names N) and that fanout exchange. */
export async function declarePartitionExchange(
  channel: Channel,
  topology: Topology,
  type: string,
  partitions: number,
): Promise<string> {
  const exchange = partitionExchangeName(topology, type);
  const unkeyed = unkeyedExchangeName(topology, type, partitions);
  await channel.assertExchange(exchange, 'headers', { durable: true, alternateExchange: unkeyed });
  await channel.assertExchange(unkeyed, 'fanout', { durable: true });
  return exchange;
}

/** What a group queue's declaration depends on: the options every process must share. */
export interface GroupQueueSettings {
  readonly topology: Topology;
  readonly partitions: number;
  readonly maxLength: number | undefined;
  readonly queueType: QueueType;
}

/**
 * One queue of a (group, type) with its bindings: unpartitioned, today's group queue; else the
 * type's partition exchange behind `<ex>` and `<ex>.delayed` (by type), the partition queue
 * behind it (by partition header), and partition 0 behind the fanout of unpartitioned messages.
 */
export async function declareQueue(
  channel: Channel,
  settings: GroupQueueSettings,
  group: string,
  type: string,
  partition: number | undefined,
): Promise<string> {
  const { topology, partitions, maxLength, queueType } = settings;
  if (partition === undefined || partitions === 0) {
    return declareGroupQueue(channel, topology, group, type, maxLength, queueType);
  }
  const exchange = await declarePartitionExchange(channel, topology, type, partitions);
  await channel.bindExchange(exchange, topology.exchange, type);
  await channel.bindExchange(exchange, topology.delayedExchange, type);
  const queue = partitionQueueName(topology, group, type, partition);
  const args = { ...groupQueueArguments(maxLength, queueType), 'x-single-active-consumer': true };
  await channel.assertQueue(queue, { durable: true, arguments: args });
  await channel.bindQueue(queue, exchange, '', { 'x-match': 'all', [PARTITION_HEADER]: String(partition) });
  if (partition === 0) await channel.bindQueue(queue, unkeyedExchangeName(topology, type, partitions), '');
  return queue;
}

/** Every queue of a (group, type) declared and bound (ensureGroup). */
export async function declareGroupQueues(
  channel: Channel,
  settings: GroupQueueSettings,
  group: string,
  type: string,
): Promise<void> {
  if (partitionsOf(group, settings.partitions) === 0) {
    await declareQueue(channel, settings, group, type, undefined);
    return;
  }
  for (let partition = 0; partition < settings.partitions; partition++) {
    try {
      await declareQueue(channel, settings, group, type, partition);
    } catch (error) {
      throw partitionMismatch(error, type, settings.partitions) ?? error;
    }
  }
}

/**
 * RabbitMQ's refusal of a declaration with other arguments, said in PlugMQ's words where
 * `partitions` is the likely cause; undefined for any other error.
 */
export function partitionMismatch(error: unknown, type: string, partitions: number): PlugmqError | undefined {
  const text = error instanceof Error ? error.message : String(error);
  if (!text.includes('PRECONDITION_FAILED')) return undefined;
  if (!/x-single-active-consumer|alternate-exchange/.test(text)) return undefined;
  return new PlugmqError(
    'CONFIG_INVALID',
    `the RabbitMQ topology of ${type} was declared with another partitions option than this manager's (${partitions}): use the same partitions everywhere the namespace publishes or consumes ${type}, or another exchange name (${text})`,
    { cause: error },
  );
}

/** Unkeyed messages in a row that go to one partition before the next gets a turn. */
export const STICKY_RUN = 100;

/**
 * The publisher's side: picks each message's partition and declares the type's partition
 * exchange once per type and connection, so a manager with another `partitions` is refused at
 * its first publish.
 */
export class PartitionRouter {
  private next = 0;
  /** Unkeyed messages sent to `next` so far. */
  private sent = 0;
  private readonly declaring = new Map<string, Promise<void>>();
  private readonly declared = new Set<string>();

  constructor(readonly partitions: number) {}

  /**
   * Keyed: by hash, so a key always lands in one partition. Unkeyed: a run of STICKY_RUN in one
   * partition, then the next (Kafka's sticky partitioner idea): a long stream spreads over every
   * partition, while a short run of unkeyed messages stays in one queue, in publish order, and
   * keeps priority ordering among its messages, as without partitions.
   */
  partitionOf(envelope: Envelope): number {
    if (envelope.key !== undefined) return partitionOfKey(envelope.key, this.partitions);
    if (this.sent === STICKY_RUN) {
      this.sent = 0;
      this.next = (this.next + 1) % this.partitions;
    }
    this.sent++;
    return this.next;
  }

  /** Undefined when every type is declared on this connection (the fast path: nothing to await). */
  ensure(types: Iterable<string>, declare: (type: string) => Promise<void>): Promise<void> | undefined {
    const waits: Promise<void>[] = [];
    for (const type of types) {
      if (this.declared.has(type)) continue;
      let declaring = this.declaring.get(type);
      if (declaring === undefined) {
        declaring = declare(type).then(
          () => {
            this.declaring.delete(type);
            this.declared.add(type);
          },
          (error: unknown) => {
            this.declaring.delete(type);
            throw partitionMismatch(error, type, this.partitions) ?? error;
          },
        );
        this.declaring.set(type, declaring);
      }
      waits.push(declaring);
    }
    return waits.length === 0 ? undefined : Promise.all(waits).then(() => undefined);
  }

  /** Declarations do not outlive a connection (the exchange may have been deleted meanwhile). */
  forget(): void {
    this.declared.clear();
    this.declaring.clear();
  }
}
