import { createHash } from 'node:crypto';
import type { Channel } from 'amqplib';
import type { QueueType } from './options.js';

/**
 * Names and declarations of everything the driver creates. All are durable and declared
 * idempotently (same arguments every time), so any number of processes can declare them and a
 * reconnect can simply declare again.
 *
 * ```
 *  publish(type) ──► <ex> (topic, key = type) ──► <ex>:<group>:<type>  (one queue per group and type)
 *                                                     ▲          │ retry(delay)
 *       <ex>.delayed (topic) ── key = type ───────────┘          ▼
 *            ▲                             <ex>.retry (headers) ─► <ex>.retry.<ms> (TTL ms)
 *            │ dead-letter on expiry                                 │ dead-letter on expiry via the
 *  <ex>.delay (headers) ─► <ex>.delay.<ms> (TTL ms)                  ▼ default exchange, key = queue name
 *     ▲ publish(type, { delayMs })                              back to the failing group's queue only
 * ```
 */
export interface Topology {
  /** Topic exchange of message types (routing key = type). */
  readonly exchange: string;
  /** Topic exchange that expired delayed messages are routed through; AE = `unrouted`. */
  readonly delayedExchange: string;
  /** Fanout alternate exchange of `delayedExchange` and its queue: delayed messages no group was bound for. */
  readonly unrouted: string;
  /** Headers exchange in front of the retry wait queues. */
  readonly retryExchange: string;
  /** Headers exchange in front of the delay wait queues. */
  readonly delayExchange: string;
}

export const MAX_PRIORITY = 10;
/**
 * Header that picks the wait queue behind a headers exchange; removed on delivery. Not `x-…`:
 * RabbitMQ's headers exchange ignores `x-` headers when matching.
 */
export const WAIT_HEADER = 'plugmq-wait';
/** How long an unused wait queue lives after its TTL has passed (RabbitMQ deletes it then). */
const WAIT_QUEUE_IDLE_MS = 5 * 60_000;

export function topologyFor(exchange: string): Topology {
  return {
    exchange,
    delayedExchange: `${exchange}.delayed`,
    unrouted: `${exchange}.unrouted`,
    retryExchange: `${exchange}.retry`,
    delayExchange: `${exchange}.delay`,
  };
}

/**
 * `<exchange>:<group>:<type>`. Types and groups cannot contain ':', so the name is unambiguous and
 * never clashes with the wait queues (`<exchange>.retry.<ms>`). One queue per (group, type) rather
 * than per group: two subscriptions of one group on different types (e.g. several `respond()`
 * calls sharing the default responder group) must not receive each other's messages. Names over
 * RabbitMQ's 255-byte limit end in a hash instead of the type.
 */
export function groupQueueName(topology: Topology, group: string, type: string): string {
  const name = `${topology.exchange}:${group}:${type}`;
  if (name.length <= 255) return name;
  const digest = createHash('sha256').update(`${group}:${type}`).digest('hex').slice(0, 32);
  return `${topology.exchange}:${group.slice(0, 100)}:~${digest}`;
}

/**
 * Arguments of every group queue: classic ones with priorities 0–9 (and 10), quorum ones without
 * (RabbitMQ 3.10 quorum queues have none); the optional length limit on either.
 */
export function groupQueueArguments(
  maxLength?: number,
  queueType: QueueType = 'classic',
): Record<string, unknown> {
  const base: Record<string, unknown> =
    queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : { 'x-max-priority': MAX_PRIORITY };
  if (maxLength === undefined) return base;
  return { ...base, 'x-max-length': maxLength, 'x-overflow': 'reject-publish' };
}

/**
 * Exchanges every connection declares once, before publishing or consuming. Exchanges live on
 * every node of a cluster, so these succeed whichever node is down; queues (which have a home
 * node) are declared apart, each failure on its own.
 */
export async function declareExchanges(channel: Channel, topology: Topology): Promise<void> {
  await channel.assertExchange(topology.exchange, 'topic', { durable: true });
  await channel.assertExchange(topology.unrouted, 'fanout', { durable: true });
  await channel.assertExchange(topology.delayedExchange, 'topic', {
    durable: true,
    alternateExchange: topology.unrouted,
  });
  await channel.assertExchange(topology.retryExchange, 'headers', { durable: true });
  await channel.assertExchange(topology.delayExchange, 'headers', { durable: true });
}

/** The queue behind the unrouted exchange: of `queueType`, so a quorum namespace has no single home node. */
export async function declareUnroutedQueue(
  channel: Channel,
  topology: Topology,
  queueType: QueueType,
): Promise<void> {
  await channel.assertQueue(topology.unrouted, {
    durable: true,
    ...(queueType === 'quorum' ? { arguments: { 'x-queue-type': 'quorum' } } : {}),
  });
  await channel.bindQueue(topology.unrouted, topology.unrouted, '');
}

/** The group's queue, bound to the type on the main exchange and on the delayed exchange. */
export async function declareGroupQueue(
  channel: Channel,
  topology: Topology,
  group: string,
  type: string,
  maxLength?: number,
  queueType: QueueType = 'classic',
): Promise<string> {
  const queue = groupQueueName(topology, group, type);
  await channel.assertQueue(queue, { durable: true, arguments: groupQueueArguments(maxLength, queueType) });
  await channel.bindQueue(queue, topology.exchange, type);
  await channel.bindQueue(queue, topology.delayedExchange, type);
  return queue;
}

export type WaitKind = 'retry' | 'delay';

export function waitQueueName(topology: Topology, kind: WaitKind, delayMs: number): string {
  return `${kind === 'retry' ? topology.retryExchange : topology.delayExchange}.${delayMs}`;
}

/**
 * One wait queue per exact delay: every message in it has the same TTL, so the head always
 * expires first and a short delay never waits behind a long one (no head-of-line blocking).
 * On expiry a retry goes through the default exchange to the queue named by its routing key
 * (the failing group's queue); a delayed publish goes through the delayed exchange by type.
 * `x-expires` removes queues of delays that are no longer used.
 */
export async function declareWaitQueue(
  channel: Channel,
  topology: Topology,
  kind: WaitKind,
  delayMs: number,
): Promise<string> {
  const queue = waitQueueName(topology, kind, delayMs);
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-message-ttl': delayMs,
      'x-dead-letter-exchange': kind === 'retry' ? '' : topology.delayedExchange,
      'x-expires': delayMs + WAIT_QUEUE_IDLE_MS,
    },
  });
  const exchange = kind === 'retry' ? topology.retryExchange : topology.delayExchange;
  await channel.bindQueue(queue, exchange, '', { 'x-match': 'all', [WAIT_HEADER]: String(delayMs) });
  return queue;
}

/** Re-declare a wait queue at least this often while it is used, so `x-expires` never fires under it. */
export const WAIT_QUEUE_REFRESH_MS = 60_000;
