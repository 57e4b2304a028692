import { inspect } from 'node:util';
import {
  type Capabilities,
  configInvalid,
  integerOption,
  type PlugmqConfig,
  PlugmqError,
  parseUrlList,
  partitionsOption,
  redactCredentials,
  type TlsOptions,
  tlsOption,
} from '@plugmq/core/driver';
import { isSentinelUrl, type SentinelTarget, sentinelTarget } from './sentinel.js';

/**
 * What Redis Streams can honour, and why the false ones are false:
 * - `orderedByKey: false` by default: the consumers of one group (also in other processes)
 *   compete for one stream, so two messages of one key can be handled at once by two consumers,
 *   and a retried message waits in the group's retry stream while later ones overtake it. Inside
 *   one subscription core still runs same-key messages one after the other. `partitions: N`
 *   makes it true (see capabilitiesFor and partition-leases.ts).
 * - `priority: true`: levels 1..9 each have a stream of their own, read highest first by a
 *   subscription that then fetches no more than its handlers can start (priority-levels.ts).
 */
export const capabilities: Capabilities = Object.freeze({
  persistent: true,
  orderedByKey: false,
  delay: true,
  priority: true,
  newGroupReceivesOldMessages: true,
  requestReply: true,
});

/**
 * Capabilities of a manager with these options: with `partitions` a key's messages go to one
 * partition stream, read by one subscription of the group at a time (a lease), in order.
 */
export function capabilitiesFor(config: Partial<Pick<RedisConfig, 'partitions'>>): Capabilities {
  if ((config.partitions ?? 0) === 0) return capabilities;
  return Object.freeze({ ...capabilities, orderedByKey: true });
}

export const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** TLS options handed to ioredis (and so to Node's `tls.connect`) as they are. */
export type RedisTlsOptions = TlsOptions;

/**
 * Redis driver options (all optional; defaults in brackets):
 * - `url` [`redis://127.0.0.1:6379`]: `redis://[user:password@]host:port[/db]`, `rediss://` for TLS.
 *   With `cluster: true`, several seed nodes separated by commas: `redis://a:7000,b:7001`.
 * - `cluster` [false]: use an ioredis Cluster client (keys carry hash tags, see README).
 * - `keyPrefix` [`plugmq`]: prefix of every key the driver writes.
 * - `connectTimeoutMs` [5 000]: how long the first connect may take before CONNECTION.
 * - `reconnectMaxDelayMs` [2 000]: cap of ioredis' reconnect back-off; reconnecting never gives up.
 * - `prefetch` [2 × concurrency, at least 4]: entries a subscription holds unsettled at once (XREADGROUP COUNT);
 *   at most `concurrency` once a consumed type has priority levels (priority-levels.ts).
 * - `blockMs` [2 000]: XREADGROUP BLOCK time; only bounds how often an idle reader loops.
 * - `claimMinIdleMs` [30 000]: an entry pending this long on a consumer that stopped heartbeating
 *   is reclaimed (XAUTOCLAIM) by another consumer of the group; running handlers keep theirs alive.
 * - `claimIntervalMs` [min(5 000, claimMinIdleMs / 2)]: how often a subscription looks for such entries.
 * - `trimIntervalMs` [30 000]: how often streams are trimmed below what every group acknowledged
 *   (never losing an unacknowledged entry); 0 turns trimming off.
 * - `maxLen`: also cap each type's stream at about this many entries (XADD MAXLEN ~). LOSSY: an
 *   entry some group has not handled yet can be trimmed. Off by default.
 * - `delayPollMs` [200]: how often due delayed/retried messages are looked for (a process wakes
 *   earlier for its own delays).
 * - `replyTtlMs` [60 000]: lifetime of a reply list nobody reads any more (requester gone).
 * - `tls`: options passed through to ioredis/tls.connect (`rediss://` turns TLS on by itself).
 * - `maxMessageBytes` [536 870 912, Redis' `proto-max-bulk-len`]: a publish whose body is larger
 *   is refused with INVALID_ARGUMENT before it is sent. Lower it to protect memory (every entry
 *   stays in the stream until trimmed); raise it only with the server's `proto-max-bulk-len`.
 * - Sentinel: `url: 'redis+sentinel://[user:password@]h1:26379,h2:26379/<masterName>'`, or
 *   ioredis' shape `sentinels: [{ host, port }]` + `sentinelName` (see sentinel.ts);
 *   `sentinelPassword` when the Sentinels themselves require one.
 * - `waitForReplicas` [0: off]: after each publish, WAIT until this many replicas acknowledged
 *   the write (see publisher.ts); `waitForReplicasTimeoutMs` [1 000] bounds one WAIT.
 * - `partitions` [0: off]: 0..256. N > 0 orders by key: a keyed message goes to partition stream
 *   `<type>:k<p>` (p = FNV-1a of the key mod N), and each partition of a group is read by one
 *   subscription at a time, which holds its lease (see partition-leases.ts). Use the same N in
 *   every process of the namespace. A key with a priority > 0 is refused (UNSUPPORTED).
 * - `leaseMs` [10 000]: lifetime of a partition lease, renewed every leaseMs / 3; how long a
 *   dead consumer's partitions wait before another subscription takes them over.
 */
/** Every option the Redis driver reads (besides core's); anything else is refused. */
export const OPTIONS = [
  'cluster',
  'keyPrefix',
  'connectTimeoutMs',
  'reconnectMaxDelayMs',
  'prefetch',
  'blockMs',
  'claimMinIdleMs',
  'claimIntervalMs',
  'trimIntervalMs',
  'maxLen',
  'delayPollMs',
  'replyTtlMs',
  'tls',
  'maxMessageBytes',
  'sentinels',
  'sentinelName',
  'sentinelPassword',
  'waitForReplicas',
  'waitForReplicasTimeoutMs',
  'partitions',
  'leaseMs',
] as const;

/** Redis' own default `proto-max-bulk-len`: 512 MB, the largest string a command may carry. */
export const DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

export interface RedisConfig extends PlugmqConfig {
  url: string;
  cluster: boolean;
  keyPrefix: string;
  connectTimeoutMs: number;
  reconnectMaxDelayMs: number;
  prefetch?: number;
  blockMs: number;
  claimMinIdleMs: number;
  claimIntervalMs: number;
  trimIntervalMs: number;
  maxLen?: number;
  delayPollMs: number;
  replyTtlMs: number;
  tls?: RedisTlsOptions;
  maxMessageBytes: number;
  /** Set when the master is found through Sentinels (the URL form or the `sentinels` option). */
  sentinel?: SentinelTarget;
  sentinelPassword?: string;
  /** Replicas that must acknowledge each publish (WAIT); 0: publishes do not wait for replicas. */
  waitForReplicas: number;
  waitForReplicasTimeoutMs: number;
  /** 0: keys are not ordered across consumers; N: N partition streams per type, leased per group. */
  partitions: number;
  leaseMs: number;
}

const PREFIX_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;

/** Host/port seeds of `url` (one, or several separated by commas for a cluster). */
export function parseRedisUrls(value: unknown): URL[] {
  if (typeof value !== 'string' || value.length === 0) {
    throw configInvalid('url', 'a redis:// or rediss:// URL string', value);
  }
  return parseUrlList(value, ['redis:', 'rediss:']).map((text) => {
    const url = new URL(text);
    if (url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname)) {
      throw new PlugmqError(
        'CONFIG_INVALID',
        `url path must be a database number such as /0: ${redactCredentials(value)}`,
      );
    }
    return url;
  });
}

export function validateRedisConfig(config: PlugmqConfig): RedisConfig {
  let sentinel = sentinelTarget(config, config.url);
  // With the `sentinels` option a plain url only lends its credentials (shown as the Sentinels).
  const url = config.url ?? DEFAULT_URL;
  const urls = isSentinelUrl(url) ? [] : parseRedisUrls(url);
  const lender = urls[0];
  if (sentinel && lender && !isSentinelUrl(url)) {
    if (urls.length > 1) throw configInvalid('url', 'one URL lending its credentials (with sentinels)', url);
    sentinel = {
      ...sentinel,
      ...(lender.username ? { username: decodeURIComponent(lender.username) } : {}),
      ...(lender.password ? { password: decodeURIComponent(lender.password) } : {}),
    };
  }
  const cluster = config.cluster ?? false;
  if (typeof cluster !== 'boolean') throw configInvalid('cluster', 'true or false', cluster);
  if (sentinel && cluster) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      'cluster must be false with Sentinels (a Redis Cluster fails over by itself, without Sentinel)',
    );
  }
  if (sentinel && tlsWanted(config, urls)) {
    throw new PlugmqError('CONFIG_INVALID', 'tls is not supported with Sentinels yet');
  }
  if (urls.length > 1 && !cluster) {
    throw configInvalid('url', 'one URL (several seed nodes need cluster: true)', url);
  }
  const keyPrefix = config.keyPrefix ?? 'plugmq';
  if (typeof keyPrefix !== 'string' || !PREFIX_PATTERN.test(keyPrefix) || /[{}]/.test(keyPrefix)) {
    throw configInvalid('keyPrefix', 'a name of [A-Za-z0-9._:-], at most 100 characters', keyPrefix);
  }
  const tls = tlsOption(config);
  const prefetch = config.prefetch === undefined ? undefined : integerOption(config, 'prefetch', 1, 1);
  const maxLen = config.maxLen === undefined ? undefined : integerOption(config, 'maxLen', 1, 1);
  const claimMinIdleMs = integerOption(config, 'claimMinIdleMs', 30_000, 1);
  return hideSecrets({
    ...config,
    url,
    cluster,
    keyPrefix,
    connectTimeoutMs: integerOption(config, 'connectTimeoutMs', 5_000, 1),
    reconnectMaxDelayMs: integerOption(config, 'reconnectMaxDelayMs', 2_000, 1),
    ...(prefetch === undefined ? {} : { prefetch }),
    blockMs: integerOption(config, 'blockMs', 2_000, 1),
    claimMinIdleMs,
    claimIntervalMs: integerOption(
      config,
      'claimIntervalMs',
      Math.max(1, Math.min(5_000, Math.floor(claimMinIdleMs / 2))),
      1,
    ),
    trimIntervalMs: integerOption(config, 'trimIntervalMs', 30_000, 0),
    ...(maxLen === undefined ? {} : { maxLen }),
    delayPollMs: integerOption(config, 'delayPollMs', 200, 1),
    replyTtlMs: integerOption(config, 'replyTtlMs', 60_000, 1),
    ...(tls === undefined ? {} : { tls }),
    maxMessageBytes: integerOption(config, 'maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES, 1),
    ...(sentinel === undefined ? {} : { sentinel }),
    waitForReplicas: integerOption(config, 'waitForReplicas', 0, 0),
    waitForReplicasTimeoutMs: integerOption(config, 'waitForReplicasTimeoutMs', 1_000, 1),
    partitions: partitionsOption(config),
    // Renewed every leaseMs / 3: below 300 ms a renewal round trip could outlast its lease.
    leaseMs: integerOption(config, 'leaseMs', 10_000, 300),
  });
}

function tlsWanted(config: PlugmqConfig, urls: URL[]): boolean {
  return config.tls !== undefined || urls.some((url) => url.protocol === 'rediss:');
}

/**
 * The validated config travels inside the transport's objects: `inspect` (console.log of a
 * manager) and JSON.stringify show it with the URL's password masked and the TLS material left out.
 */
function hideSecrets(config: RedisConfig): RedisConfig {
  const shown = () => ({
    ...config,
    url: redactCredentials(config.url),
    ...(config.tls ? { tls: '[tls options]' } : {}),
    ...(config.sentinel?.password ? { sentinel: { ...config.sentinel, password: '***' } } : {}),
    ...(config.sentinelPassword ? { sentinelPassword: '***' } : {}),
  });
  Object.defineProperty(config, inspect.custom, { value: shown, enumerable: false });
  Object.defineProperty(config, 'toJSON', { value: shown, enumerable: false });
  return config;
}
