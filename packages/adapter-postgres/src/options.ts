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
 * What the PostgreSQL driver honours:
 * - `orderedByKey`: a keyed row is claimable only when no earlier row of its key waits in its
 *   group (topology.ts `keyIsFree`), so a key is handled by one consumer at a time in publish
 *   order, a retried message included (it holds its key's later messages until it is settled).
 * - `newGroupReceivesOldMessages` only with `retentionMs` (`capabilitiesFor`): a publish writes
 *   one row per group registered at that moment, and only the retained table keeps messages for
 *   a group that does not exist yet.
 */
export const capabilities: Capabilities = Object.freeze({
  persistent: true,
  orderedByKey: true,
  delay: true,
  priority: true,
  newGroupReceivesOldMessages: false,
  requestReply: true,
});

export function capabilitiesFor(config: PostgresConfig): Capabilities {
  return config.retentionMs > 0 ? { ...capabilities, newGroupReceivesOldMessages: true } : capabilities;
}

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
 * - `retentionMs` [0, off]: keep every published message this long, so that a new group with
 *   `startFrom: 'earliest'` receives what was published before it existed. Costs a second row per
 *   publish.
 */
export const OPTIONS = [
  'schema',
  'poolSize',
  'connectTimeoutMs',
  'prefetch',
  'leaseMs',
  'pollMs',
  'maxMessageBytes',
  'retentionMs',
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
  retentionMs: number;
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
    retentionMs: integerOption(config, 'retentionMs', 0, 0),
  });
}

/** `inspect` and JSON.stringify of the config show the URL with its password masked. */
function hideSecrets(config: PostgresConfig): PostgresConfig {
  const shown = () => ({ ...config, url: redactCredentials(config.url) });
  Object.defineProperty(config, inspect.custom, { value: shown, enumerable: false });
  Object.defineProperty(config, 'toJSON', { value: shown, enumerable: false });
  return config;
}
