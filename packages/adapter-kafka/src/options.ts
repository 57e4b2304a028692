import {
  type Capabilities,
  configInvalid,
  integerOption,
  type PlugmqConfig,
  PlugmqError,
  parseUrlList,
  redactCredentials,
} from '@plugmq/core/driver';
import { Secret } from './secret.js';

export const capabilities: Capabilities = Object.freeze({
  persistent: true,
  orderedByKey: true,
  // Kafka has no per-message delay: a delayed publish waits in `<type>.delay` until a delay mover
  // run by the type's consumers moves it to the type (delay-mover.ts).
  delay: true,
  // A partition log is FIFO; there is no way to overtake earlier messages.
  priority: false,
  newGroupReceivesOldMessages: true,
  requestReply: true,
});

/** TLS options handed to the client unchanged (node:tls options, or `true` for defaults). */
export type KafkaSsl = boolean | Record<string, unknown>;

/** SASL options handed to the client unchanged (e.g. `{ mechanism: 'plain', username, password }`). */
export type KafkaSasl = Record<string, unknown> & { mechanism: string };

/**
 * Kafka driver options (all optional):
 * - `url` (default `kafka://127.0.0.1:9092`): `kafka://host:port[,host:port…]`, or a bare
 *   `host:port[,host:port…]` broker list. Credentials in the URL become SASL/PLAIN.
 * - `clientId` (default 'plugmq').
 * - `client` (default 'kafkajs'): the Kafka client library behind the driver: 'kafkajs' (2.2.4,
 *   unmaintained) or 'platformatic' (@platformatic/kafka 1.x, maintained; needs Node >= 20.19.4
 *   and is loaded only when chosen).
 * - `partitions` (default 3) and `replicationFactor` (default 1): for topics the driver creates.
 * - `groupPrefix` (default 'plugmq.'): Kafka consumer group id = prefix + PlugMQ group.
 * - `connectTimeoutMs` (default 10 000): an unreachable broker fails with CONNECTION after this.
 * - `sessionTimeoutMs` (default 10 000), `rebalanceTimeoutMs` (default 30 000),
 *   `heartbeatIntervalMs` (default 1 000): consumer group timings.
 * - `maxWaitTimeMs` (default 100): how long a fetch waits for data (latency vs. request count).
 * - `prefetch` (default: max(32, 2 × the subscription's concurrency)): unsettled messages per subscription.
 * - `replyPartitions` (default 6): partitions of the shared reply topic `plugmq.replies`.
 * - `ssl`, `sasl`: passed to the client; never logged.
 * - `delayReadAhead` (default 10 000): delayed messages a delay mover holds in memory per
 *   partition of `<type>.delay`, so a later message with a shorter delay can be moved first;
 *   beyond it, a message waits until one of those is moved.
 * - `maxMessageBytes` (default 1 048 588, Kafka's `message.max.bytes`): a publish whose record
 *   (body, key, headers and batch overhead) is larger is refused with INVALID_ARGUMENT before it
 *   is sent. Raise it together with the broker's `message.max.bytes` or the topics'
 *   `max.message.bytes`.
 * - `priorityLevels` (default 0, off): 2..10 priority bands, each a topic of its own
 *   (`<type>.p<band>`, band 0 the type's topic); a subscription hands core the highest band
 *   waiting first (priority-bands.ts). Off keeps one topic per type and `priority` UNSUPPORTED.
 */
export interface KafkaConfig extends PlugmqConfig {
  brokers: string[];
  clientId: string;
  client: KafkaClientName;
  partitions: number;
  replicationFactor: number;
  groupPrefix: string;
  connectTimeoutMs: number;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxWaitTimeMs: number;
  prefetch?: number;
  replyPartitions: number;
  /** Wrapped so that inspecting or serialising the config never shows keys or passwords. */
  ssl?: Secret<KafkaSsl>;
  sasl?: Secret<KafkaSasl>;
  maxMessageBytes: number;
  delayReadAhead: number;
  priorityLevels: number;
}

/** The client libraries the driver can run on (`client` option). */
export const CLIENTS = ['kafkajs', 'platformatic'] as const;
export type KafkaClientName = (typeof CLIENTS)[number];

export const DEFAULT_URL = 'kafka://127.0.0.1:9092';

/** Every option the Kafka driver reads (besides core's); anything else is refused. */
export const OPTIONS = [
  'clientId',
  'client',
  'partitions',
  'replicationFactor',
  'groupPrefix',
  'connectTimeoutMs',
  'sessionTimeoutMs',
  'rebalanceTimeoutMs',
  'heartbeatIntervalMs',
  'maxWaitTimeMs',
  'prefetch',
  'replyPartitions',
  'ssl',
  'sasl',
  'maxMessageBytes',
  'delayReadAhead',
  'priorityLevels',
] as const;

/** The most priority bands: one per priority core accepts (0..9). */
export const MAX_PRIORITY_LEVELS = 10;

/** The manager's capabilities: `priority` only with bands (`priorityLevels` of 2 or more). */
export function capabilitiesFor(config: KafkaConfig): Capabilities {
  return config.priorityLevels > 0 ? { ...capabilities, priority: true } : capabilities;
}

/** 0 (off) or 2..MAX_PRIORITY_LEVELS: one band orders nothing, more than ten have no priority to hold. */
function priorityLevelsOption(config: PlugmqConfig): number {
  const value = config.priorityLevels ?? 0;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value === 1 ||
    value < 0 ||
    value > MAX_PRIORITY_LEVELS
  ) {
    throw configInvalid(
      'priorityLevels',
      `0 (off) or an integer from 2 to ${MAX_PRIORITY_LEVELS} (priority bands; 10 gives each priority 0..9 its own)`,
      value,
    );
  }
  return value;
}

/**
 * Kafka's default `message.max.bytes` (broker) and `max.message.bytes` (topic): 1 MiB plus the
 * record batch overhead.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

const PROTOCOLS = ['kafka:', 'kafka+ssl:'] as const;
const BROKERS_EXPECTED = 'kafka://host:port[,host:port…] or host:port[,host:port…]';

/** `kafka://user:pw@h1:9092,h2:9092` or `h1:9092,h2:9092` → broker list (+ SASL/PLAIN from credentials). */
export function parseBrokers(url: unknown): { brokers: string[]; sasl?: KafkaSasl; ssl?: boolean } {
  if (typeof url !== 'string' || url.trim().length === 0) {
    throw configInvalid('url', 'a broker URL such as kafka://127.0.0.1:9092', url);
  }
  const text = url.trim();
  // A bare broker list is the kafka:// form without its scheme.
  const nodes = parseUrlList(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `kafka://${text}`, PROTOCOLS).map(
    (node) => new URL(node),
  );
  if (nodes.some((node) => node.port === '')) throw configInvalid('url', BROKERS_EXPECTED, url);
  const first = nodes[0] as URL;
  const sasl: KafkaSasl | undefined = first.username
    ? {
        mechanism: 'plain',
        username: decodeURIComponent(first.username),
        password: decodeURIComponent(first.password),
      }
    : undefined;
  const ssl = first.protocol === 'kafka+ssl:' ? true : undefined;
  return {
    brokers: nodes.map((node) => `${node.hostname}:${node.port}`),
    ...(sasl ? { sasl } : {}),
    ...(ssl ? { ssl } : {}),
  };
}

export function validateKafkaConfig(config: PlugmqConfig): KafkaConfig {
  const parsed = parseBrokers(config.url ?? DEFAULT_URL);
  const clientId = config.clientId ?? 'plugmq';
  if (typeof clientId !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(clientId)) {
    throw configInvalid('clientId', 'a string of [A-Za-z0-9._-], at most 100 characters', clientId);
  }
  const client = config.client ?? 'kafkajs';
  if (!CLIENTS.includes(client as KafkaClientName)) {
    throw configInvalid('client', CLIENTS.map((name) => `'${name}'`).join(' or '), client);
  }
  const groupPrefix = config.groupPrefix ?? 'plugmq.';
  if (typeof groupPrefix !== 'string' || groupPrefix.length > 100) {
    throw configInvalid('groupPrefix', 'a string of at most 100 characters', groupPrefix);
  }
  // Validation runs twice (createQueueManager, then create): accept already-wrapped secrets.
  const rawSsl = config.ssl instanceof Secret ? config.ssl.reveal() : config.ssl;
  const rawSasl = config.sasl instanceof Secret ? config.sasl.reveal() : config.sasl;
  const ssl = rawSsl ?? parsed.ssl;
  if (ssl !== undefined && typeof ssl !== 'boolean' && (typeof ssl !== 'object' || ssl === null)) {
    throw configInvalid('ssl', 'a boolean or a TLS options object', ssl);
  }
  const sasl = rawSasl ?? parsed.sasl;
  if (
    sasl !== undefined &&
    (typeof sasl !== 'object' || sasl === null || typeof (sasl as KafkaSasl).mechanism !== 'string')
  ) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      'sasl must be an object with a mechanism (got ' + typeof sasl + ')',
    );
  }
  const sessionTimeoutMs = integerOption(config, 'sessionTimeoutMs', 10_000, 1_000);
  const heartbeatIntervalMs = integerOption(config, 'heartbeatIntervalMs', 1_000, 100);
  if (heartbeatIntervalMs >= sessionTimeoutMs) {
    throw configInvalid(
      'heartbeatIntervalMs',
      `less than sessionTimeoutMs (${sessionTimeoutMs})`,
      heartbeatIntervalMs,
    );
  }
  const prefetch = config.prefetch === undefined ? undefined : integerOption(config, 'prefetch', 1, 1);
  return {
    ...config,
    brokers: parsed.brokers,
    clientId,
    client: client as KafkaClientName,
    partitions: integerOption(config, 'partitions', 3, 1),
    replicationFactor: integerOption(config, 'replicationFactor', 1, 1),
    groupPrefix,
    connectTimeoutMs: integerOption(config, 'connectTimeoutMs', 10_000, 1),
    sessionTimeoutMs,
    rebalanceTimeoutMs: integerOption(config, 'rebalanceTimeoutMs', 30_000, 1_000),
    heartbeatIntervalMs,
    maxWaitTimeMs: integerOption(config, 'maxWaitTimeMs', 100, 0),
    ...(prefetch === undefined ? {} : { prefetch }),
    replyPartitions: integerOption(config, 'replyPartitions', 6, 1),
    maxMessageBytes: integerOption(config, 'maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES, 1),
    delayReadAhead: integerOption(config, 'delayReadAhead', 10_000, 1),
    priorityLevels: priorityLevelsOption(config),
    // The URL's password is in `sasl` now; the URL core keeps is masked.
    ...(typeof config.url === 'string' ? { url: redactCredentials(config.url) } : {}),
    ...(ssl === undefined ? {} : { ssl: new Secret(ssl as KafkaSsl) }),
    ...(sasl === undefined ? {} : { sasl: new Secret(sasl as KafkaSasl) }),
  };
}
