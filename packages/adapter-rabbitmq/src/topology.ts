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

/**
 * Wait queues come in windows of this length: a publish goes to the queue of its delay and of
 * the window it is sent in, and a queue takes publishes for one window only, so it can be left to
 * expire (`x-expires`) once its last message has waited out its delay.
 */
export const WAIT_WINDOW_MS = 15 * 60_000;
/**
 * How long a wait queue outlives its window plus its delay: room for processes' clocks to
 * disagree about when a window ends and for the broker to move the last expired messages.
 */
const WAIT_QUEUE_GRACE_MS = 10 * 60_000;

/** The window a wait queue is chosen by: the same for every process whose clock agrees. */
export function waitWindow(now: number = Date.now()): number {
  return Math.floor(now / WAIT_WINDOW_MS);
}

/** `<exchange>.retry.<ms>.w<window>` or `<exchange>.delay.<ms>.w<window>`. */
export function waitQueueName(
  topology: Topology,
  kind: WaitKind,
  delayMs: number,
  window: number = waitWindow(),
): string {
  return `${kind === 'retry' ? topology.retryExchange : topology.delayExchange}.${delayMs}.w${window}`;
}

/** The `plugmq-wait` header value that routes to one wait queue: `<ms>@<window>`. */
export function waitRoute(delayMs: number, window: number): string {
  return `${delayMs}@${window}`;
}

/** Reads a `plugmq-wait` header value back; undefined when it is not one. */
export function parseWaitRoute(value: unknown): { delayMs: number; window: number } | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+)@(\d+)$/.exec(value);
  if (!match) return undefined;
  return { delayMs: Number(match[1]), window: Number(match[2]) };
}

/**
 * One wait queue per exact delay (and window): every message in it has the same TTL, so the head
 * always expires first and a short delay never waits behind a long one (no head-of-line blocking).
 * On expiry a retry goes through the default exchange to the queue named by its routing key (the
 * failing group's queue); a delayed publish goes through the delayed exchange by type.
 *
 * Quorum queues with at-least-once dead-lettering: the expired message leaves the wait queue only
 * once the queues it is routed to confirmed it, so a broker restart (or a node dying, the queue
 * being replicated) while messages expire loses none. Classic queues dead-letter at most once: a
 * fault run lost delayed messages that expired around a restart. At-least-once dead-lettering
 * needs `x-overflow: reject-publish` (no length limit is set, so nothing is rejected).
 *
 * A quorum queue's `x-expires` counts from its declaration, not from its last use (re-declaring
 * does not renew it) and RabbitMQ 3.10 refuses `queue.delete` with `if-empty` on quorum queues: so
 * each queue takes publishes for one window only and expires a grace period after its window's
 * last message fell due.
 */
export async function declareWaitQueue(
  channel: Channel,
  topology: Topology,
  kind: WaitKind,
  delayMs: number,
  window: number,
): Promise<string> {
  const queue = waitQueueName(topology, kind, delayMs, window);
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': delayMs,
      'x-dead-letter-exchange': kind === 'retry' ? '' : topology.delayedExchange,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
      'x-expires': WAIT_WINDOW_MS + delayMs + WAIT_QUEUE_GRACE_MS,
    },
  });
  const exchange = kind === 'retry' ? topology.retryExchange : topology.delayExchange;
  await channel.bindQueue(queue, exchange, '', {
    'x-match': 'all',
    [WAIT_HEADER]: waitRoute(delayMs, window),
  });
  return queue;
}
