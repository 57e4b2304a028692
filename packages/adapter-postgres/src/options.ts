import { inspect } from 'node:util';
import {
  type Capabilities,
  configInvalid,
  integerOption,
  type PlugmqConfig,
  PlugmqError,
  redactCredentials,
} from '@plugmq/core/driver';

/**
 * What the PostgreSQL driver honours, and why the false ones are false:
 * - `orderedByKey: false`: the consumers of one group claim rows of one table with SKIP LOCKED, so
 *   two messages of one key can be handled at once by two consumers, and a retried row waits
 *   (`available_at`) while later ones overtake it. Inside one subscription core still runs
 *   same-key messages one after the other.
 * - `newGroupReceivesOldMessages: false`: a publish writes one row per group registered for its
 *   type at that moment; there is no log a new group could read from the start. As on RabbitMQ, a
 *   `mandatory` publish that no group would receive is refused, and a plain one is counted unrouted.
 */
export const capabilities: Capabilities = Object.freeze({
  persistent: true,
  orderedByKey: false,
  delay: true,
  priority: true,
  newGroupReceivesOldMessages: false,
  requestReply: true,
});

export const DEFAULT_URL = 'postgres://127.0.0.1:5432/postgres';

/** PostgreSQL's largest field is 1 GB; the default stays well below it (every row is one body). */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/**
 * PostgreSQL driver options (all optional; defaults in brackets):
 * - `url` [`postgres://127.0.0.1:5432/postgres`]: `postgres://[user:password@]host:port/database`.
 * - `schema` [`plugmq`]: the schema holding the driver's tables (created if missing).
 * - `poolSize` [10]: connections for publishes, claims and acks (LISTEN has one more of its own).
 * - `connectTimeoutMs` [5 000]: how long the first connect (and the schema setup) may take.
 * - `prefetch` [concurrency]: rows a subscription holds claimed at once. More saves round trips,
 *   but rows claimed ahead wait in the process, so a later higher-priority message can come after them.
 * - `leaseMs` [30 000]: a claimed row is hidden from the group this long; a live subscription
 *   renews it every leaseMs / 3, so only a crashed consumer's rows come back, after the lease.
 * - `pollMs` [1 000]: how often an idle subscription looks for rows when no NOTIFY woke it.
 * - `maxMessageBytes` [268 435 456]: a publish whose body is larger is refused before it is sent.
 */
export const OPTIONS = [
  'schema',
  'poolSize',
  'connectTimeoutMs',
  'prefetch',
  'leaseMs',
  'pollMs',
  'maxMessageBytes',
] as const;

export interface PostgresConfig extends PlugmqConfig {
  url: string;
  schema: string;
  poolSize: number;
  connectTimeoutMs: number;
  prefetch?: number;
  leaseMs: number;
  pollMs: number;
  maxMessageBytes: number;
}

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,40}$/;

export function validatePostgresConfig(config: PlugmqConfig): PostgresConfig {
  const url = config.url ?? DEFAULT_URL;
  if (typeof url !== 'string') throw configInvalid('url', 'a postgres:// URL string', url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PlugmqError('CONFIG_INVALID', `url is not a valid URL: ${redactCredentials(url)}`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw configInvalid('url', 'a postgres:// or postgresql:// URL', url);
  }
  const schema = config.schema ?? 'plugmq';
  if (typeof schema !== 'string' || !SCHEMA_PATTERN.test(schema)) {
    throw configInvalid('schema', 'a lower-case SQL name of [a-z0-9_], at most 41 characters', schema);
  }
  const prefetch = config.prefetch === undefined ? undefined : integerOption(config, 'prefetch', 1, 1);
  return hideSecrets({
    ...config,
    url,
    schema,
    poolSize: integerOption(config, 'poolSize', 10, 1),
    connectTimeoutMs: integerOption(config, 'connectTimeoutMs', 5_000, 1),
    ...(prefetch === undefined ? {} : { prefetch }),
    leaseMs: integerOption(config, 'leaseMs', 30_000, 100),
    pollMs: integerOption(config, 'pollMs', 1_000, 10),
    maxMessageBytes: integerOption(config, 'maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES, 1),
  });
}

/** `inspect` and JSON.stringify of the config show the URL with its password masked. */
function hideSecrets(config: PostgresConfig): PostgresConfig {
  const shown = () => ({ ...config, url: redactCredentials(config.url) });
  Object.defineProperty(config, inspect.custom, { value: shown, enumerable: false });
  Object.defineProperty(config, 'toJSON', { value: shown, enumerable: false });
  return config;
}
