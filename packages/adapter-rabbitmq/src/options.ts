import {
  type Capabilities,
  configInvalid,
  integerOption,
  type PlugmqConfig,
  parseConnectionUrl,
  parseUrlList,
  type TlsOptions,
  tlsOption,
} from '@plugmq/core/driver';
import { partitionsOption } from './partitions.js';

/**
 * What RabbitMQ can honour, and why the two false ones are false:
 * - `orderedByKey: false` by default: consumers of one group compete for one queue, so two
 *   messages of the same key can be handled at once by two consumers (two processes). Inside
 *   one subscription core still runs same-key messages one after the other, but the broker gives
 *   no cross-consumer guarantee. `partitions: N` makes it true (see partitions.ts).
 * - `newGroupReceivesOldMessages: false` by default: a group's queue only receives messages
 *   published after it was bound. `retentionMs` makes it true: a stream queue per type keeps
 *   every message that long, and a new group starting from 'earliest' copies it (replay.ts).
 */
export const capabilities: Capabilities = Object.freeze({
  persistent: true,
  orderedByKey: false,
  delay: true,
  priority: true,
  newGroupReceivesOldMessages: false,
  requestReply: true,
});

/**
 * Capabilities of a manager with these options: quorum queues (RabbitMQ 3.10) have no
 * priorities, so a quorum manager refuses `priority` with UNSUPPORTED instead of ignoring it;
 * with `partitions` a key's messages reach one consumer of the group at a time, in order.
 */
export function capabilitiesFor(
  config: Pick<RabbitMqConfig, 'queueType'> & Partial<Pick<RabbitMqConfig, 'partitions' | 'retentionMs'>>,
): Capabilities {
  const ordered = (config.partitions ?? 0) > 0;
  const retained = (config.retentionMs ?? 0) > 0;
  if (config.queueType !== 'quorum' && !ordered && !retained) return capabilities;
  return Object.freeze({
    ...capabilities,
    ...(config.queueType === 'quorum' ? { priority: false } : {}),
    ...(ordered ? { orderedByKey: true } : {}),
    ...(retained ? { newGroupReceivesOldMessages: true } : {}),
  });
}

export type QueueType = 'classic' | 'quorum';
export const QUEUE_TYPES: readonly QueueType[] = ['classic', 'quorum'];

export const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';
const PROTOCOLS = ['amqp:', 'amqps:'] as const;

/** TLS options handed to Node's `tls.connect` as they are (for `amqps://` URLs). */
export type RabbitMqTlsOptions = TlsOptions;

/**
 * RabbitMQ driver options (all optional):
 * - `url` (default `amqp://guest:guest@127.0.0.1:5672`): one URL, or several separated by commas
 *   (`amqp://u:p@a:5672,b:5672` or `amqp://a,amqp://b`) to fail over between cluster nodes.
 * - `urls`: the same list as an array (takes precedence over `url`).
 * - `exchange` (default `'plugmq'`): name of the topic exchange for message types; also the
 *   prefix of every queue and exchange the driver declares, so two names never share topology.
 * - `prefetch` (default: twice the subscription's `concurrency`, 1 at concurrency 1):
 *   unacknowledged deliveries per queue of a subscription. More raises throughput, but messages
 *   fetched ahead wait in the client for a free handler and are no longer ordered by priority
 *   against later, higher-priority publishes; set it to the concurrency to keep that order.
 * - `connectTimeoutMs` (default 5 000): how long connecting (trying every URL with back-off) may
 *   take before `createQueueManager` rejects with CONNECTION.
 * - `heartbeatSeconds` (default 10): AMQP heartbeat; a dead peer is noticed after about twice this.
 * - `reconnectInitialDelayMs` (default 100) / `reconnectMaxDelayMs` (default 5 000): back-off
 *   between reconnect attempts (doubling, ±20 % jitter); reconnecting never gives up until close.
 * - `tls`: options passed through to `tls.connect` (ca, cert, key, passphrase, servername, …).
 * - `maxLength` (default: none, queues are unbounded): messages one group queue may hold; a full
 *   queue refuses publishes (`x-overflow: reject-publish`) and `publish` waits and tries again,
 *   at most `publishTimeoutMs`, then rejects PUBLISH_FAILED. Queue arguments are fixed when a
 *   queue is first declared: every process of a namespace must use the same value.
 * - `confirmStallMs` (default 5 000): a publish channel that confirms nothing for this long while
 *   publishes wait on it (and is neither blocked by the broker nor still flushing) is replaced,
 *   and its unconfirmed publishes are sent again on the new one (at least once: possibly
 *   duplicates). A 3.10 cluster can leave a channel unconfirmed forever after a quorum queue's
 *   leader node dies.
 * - `maxMessageBytes` (default 134 217 728, RabbitMQ's `max_message_size` of 128 MiB): a publish
 *   whose body and headers are larger is refused with INVALID_ARGUMENT before it is sent (the
 *   broker would close the channel). Raise it together with the broker's `max_message_size`.
 * - `queueType` (default `'classic'`): the type of the group queues and of `<exchange>.unrouted`.
 *   `'quorum'` replicates them on every node of the cluster (Raft), so they survive the node they
 *   were declared through; they have no priorities (capabilities.priority is false). Like every
 *   queue argument it is fixed at first declaration: one value per namespace (exchange).
 * - `managementUrl` (default: none): `http(s)://[user:password@]host:15672` of the broker's
 *   management HTTP API (the `rabbitmq_management` plugin). Only `inspect()` reads it: the groups
 *   nobody in this process consumed, unacknowledged counts and the oldest waiting message's age,
 *   which AMQP cannot tell. Credentials default to the AMQP URL's.
 * - `partitions` (default 0: one queue per group and type, consumers compete): N from 1 to 256
 *   gives each (group, type) N single-active-consumer queues and routes a key to one of them by
 *   hash, so a group handles a key's messages in publish order (capabilities.orderedByKey). At
 *   most N consumers of a group are active. Fixed per type and namespace like queue arguments.
 * - `retentionMs` (default 0: off): keep each type's messages this long in a stream queue
 *   (`<exchange>.log.<type>`, RabbitMQ 3.9+), so that a group new to a type that consumes with
 *   `startFrom: 'earliest'` first gets what was published before it existed. Fixed per type and
 *   exchange like queue arguments: every manager publishing the type should set the same value.
 */
/** Every option the RabbitMQ driver reads (besides core's); anything else is refused. */
export const OPTIONS = [
  'urls',
  'exchange',
  'prefetch',
  'connectTimeoutMs',
  'heartbeatSeconds',
  'reconnectInitialDelayMs',
  'reconnectMaxDelayMs',
  'tls',
  'maxLength',
  'maxMessageBytes',
  'queueType',
  'confirmStallMs',
  'managementUrl',
  'partitions',
  'retentionMs',
] as const;

/** RabbitMQ's own default `max_message_size` (3.10+): 128 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024;

export interface RabbitMqConfig extends PlugmqConfig {
  urls: string[];
  exchange: string;
  prefetch?: number;
  connectTimeoutMs: number;
  heartbeatSeconds: number;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  tls?: RabbitMqTlsOptions;
  maxLength?: number;
  maxMessageBytes: number;
  queueType: QueueType;
  confirmStallMs: number;
  managementUrl?: string;
  /** 0: one competing queue per (group, type); N: N partition queues, ordered by key. */
  partitions: number;
  /** 0: no log; otherwise how long each type's stream queue keeps messages for new groups. */
  retentionMs: number;
}

const EXCHANGE_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;

export function validateRabbitMqConfig(config: PlugmqConfig): RabbitMqConfig {
  let urls: string[];
  if (config.urls !== undefined) {
    if (!Array.isArray(config.urls) || config.urls.length === 0) {
      throw configInvalid('urls', 'a non-empty array of amqp:// or amqps:// URLs', config.urls);
    }
    urls = config.urls.flatMap((url, index) => parseUrlList(url, PROTOCOLS, `urls[${index}]`));
  } else {
    urls = parseUrlList(config.url ?? DEFAULT_URL, PROTOCOLS, 'url');
  }
  const exchange = config.exchange ?? 'plugmq';
  if (typeof exchange !== 'string' || !EXCHANGE_PATTERN.test(exchange) || exchange.startsWith('amq.')) {
    throw configInvalid('exchange', 'a name of [A-Za-z0-9._-], at most 100 characters, not amq.*', exchange);
  }
  const tls = tlsOption(config);
  const prefetch = config.prefetch === undefined ? undefined : integerOption(config, 'prefetch', 1, 1);
  const reconnectInitialDelayMs = integerOption(config, 'reconnectInitialDelayMs', 100, 1);
  const queueType = config.queueType === undefined ? 'classic' : config.queueType;
  if (typeof queueType !== 'string' || !QUEUE_TYPES.includes(queueType as QueueType)) {
    throw configInvalid('queueType', `one of ${QUEUE_TYPES.map((t) => `'${t}'`).join(', ')}`, queueType);
  }
  const managementUrl =
    config.managementUrl === undefined
      ? undefined
      : parseConnectionUrl(config.managementUrl, ['http:', 'https:'], 'managementUrl').href;
  const maxLength = config.maxLength === undefined ? undefined : integerOption(config, 'maxLength', 1, 1);
  return {
    ...config,
    urls,
    exchange,
    ...(prefetch === undefined ? {} : { prefetch }),
    connectTimeoutMs: integerOption(config, 'connectTimeoutMs', 5_000, 1),
    heartbeatSeconds: integerOption(config, 'heartbeatSeconds', 10, 0),
    reconnectInitialDelayMs,
    reconnectMaxDelayMs: integerOption(config, 'reconnectMaxDelayMs', 5_000, reconnectInitialDelayMs),
    ...(tls === undefined ? {} : { tls }),
    ...(maxLength === undefined ? {} : { maxLength }),
    maxMessageBytes: integerOption(config, 'maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES, 1),
    queueType: queueType as QueueType,
    confirmStallMs: integerOption(config, 'confirmStallMs', 5_000, 100),
    ...(managementUrl === undefined ? {} : { managementUrl }),
    partitions: partitionsOption(config),
    retentionMs: integerOption(config, 'retentionMs', 0, 0),
  };
}

/**
 * Twice the concurrency (1 at concurrency 1): the next deliveries are already here when a handler
 * finishes, so the consumer never waits an ack's round trip for work. At prefetch = concurrency
 * a consumer at concurrency 16 fell behind a 256-in-flight publisher on the same broker, whose
 * queue then grew and cost the broker more per message (benchmark: 3 400–5 700 msg/s, p50 0.1–1.4 s;
 * at twice: 7 100–7 700 msg/s, p50 under 40 ms). At concurrency 1 it gained nothing measurable,
 * and a message fetched ahead would wait behind a slow handler while other consumers idle.
 */
export function defaultPrefetch(concurrency: number): number {
  return concurrency === 1 ? 1 : concurrency * 2;
}
