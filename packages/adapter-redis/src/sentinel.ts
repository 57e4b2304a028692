import { configInvalid, type PlugmqConfig, PlugmqError, redactCredentials } from '@plugmq/core/driver';

/** Redis Sentinel's own default port. */
export const DEFAULT_SENTINEL_PORT = 26_379;

/** One Sentinel, as ioredis takes it (`new Redis({ sentinels: [{ host, port }], name })`). */
export interface SentinelAddress {
  host: string;
  port: number;
}

/** Where a Sentinel-managed master is found, and how to log in to it. */
export interface SentinelTarget {
  sentinels: SentinelAddress[];
  /** The master's name in the Sentinels' configuration (`sentinel monitor <name> …`). */
  name: string;
  /** Credentials of the master and its replicas (the URL's `user:password@`). */
  username?: string;
  password?: string;
}

const SENTINEL_SCHEME = /^redis\+sentinel:\/\//i;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;

export function isSentinelUrl(value: unknown): value is string {
  return typeof value === 'string' && SENTINEL_SCHEME.test(value);
}

/** `host`, `host:port` or `[v6]:port`; the port defaults to 26379. */
function parseAddress(text: string, whole: string): SentinelAddress {
  let url: URL;
  try {
    url = new URL(`redis://${text}`);
  } catch {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `url has a bad Sentinel address "${text}": ${redactCredentials(whole)}`,
    );
  }
  if (!url.hostname || url.pathname.length > 1 || url.username || url.password) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `url has a bad Sentinel address "${text}": ${redactCredentials(whole)}`,
    );
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : DEFAULT_SENTINEL_PORT,
  };
}

/**
 * `redis+sentinel://[user:password@]host1:port1,host2:port2/<masterName>`: the Sentinels to ask
 * (port 26379 when left out) and the name of the master they watch. The credentials are the
 * master's (and its replicas'); a Sentinel's own password is the `sentinelPassword` option.
 */
export function parseSentinelUrl(value: string): SentinelTarget {
  const rest = value.replace(SENTINEL_SCHEME, '');
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const at = authority.lastIndexOf('@');
  const credentials = at < 0 ? '' : authority.slice(0, at);
  const hosts = (at < 0 ? authority : authority.slice(at + 1)).split(',').map((part) => part.trim());
  if (hosts.some((host) => host.length === 0)) {
    throw new PlugmqError('CONFIG_INVALID', `url lists no Sentinel host:port: ${redactCredentials(value)}`);
  }
  const name = safeDecode(path.replace(/\/$/, ''), value);
  if (!NAME_PATTERN.test(name)) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `url must end with the master's name, as in redis+sentinel://host:26379/mymaster: ${redactCredentials(value)}`,
    );
  }
  const colon = credentials.indexOf(':');
  const username = safeDecode(colon < 0 ? credentials : credentials.slice(0, colon), value);
  const password = colon < 0 ? '' : safeDecode(credentials.slice(colon + 1), value);
  return {
    sentinels: hosts.map((host) => parseAddress(host, value)),
    name,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
  };
}

function safeDecode(text: string, whole: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new PlugmqError('CONFIG_INVALID', `url is not a valid URL: ${redactCredentials(whole)}`);
  }
}

/** The `sentinels` option: a non-empty array of `{ host, port }` (port 26379 when left out). */
export function sentinelsOption(value: unknown): SentinelAddress[] {
  const allowed = 'a non-empty array of { host, port } (the Sentinels to ask for the master)';
  if (!Array.isArray(value) || value.length === 0) throw configInvalid('sentinels', allowed, value);
  return value.map((entry: unknown) => {
    const { host, port = DEFAULT_SENTINEL_PORT } = (entry ?? {}) as { host?: unknown; port?: unknown };
    if (typeof entry !== 'object' || typeof host !== 'string' || host.length === 0) {
      throw configInvalid('sentinels', allowed, entry);
    }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw configInvalid('sentinels', 'ports between 1 and 65535', port);
    }
    return { host, port };
  });
}

/**
 * The Sentinel set-up of a config, or undefined for a plain server or a Cluster: the URL form, or
 * the ioredis-like `sentinels` + `sentinelName` options (then `url`, when given, must be a plain
 * `redis://` URL and lends only its credentials).
 */
export function sentinelTarget(config: PlugmqConfig, url: unknown): SentinelTarget | undefined {
  const name = config.sentinelName;
  if (name !== undefined && (typeof name !== 'string' || !NAME_PATTERN.test(name))) {
    throw configInvalid('sentinelName', "the master's name as the Sentinels know it ([A-Za-z0-9._-])", name);
  }
  const password = config.sentinelPassword;
  if (password !== undefined && (typeof password !== 'string' || password.length === 0)) {
    // Never echo it, even when it is a wrong type.
    throw new PlugmqError('CONFIG_INVALID', 'sentinelPassword must be a non-empty string');
  }
  if (isSentinelUrl(url)) {
    if (config.sentinels !== undefined) {
      throw new PlugmqError(
        'CONFIG_INVALID',
        'sentinels must not be given with a redis+sentinel:// url (the url lists the Sentinels)',
      );
    }
    const target = parseSentinelUrl(url);
    if (name !== undefined && name !== target.name) {
      throw configInvalid('sentinelName', `the url's master name "${target.name}" or left out`, name);
    }
    return target;
  }
  if (config.sentinels === undefined) {
    if (name !== undefined) throw configInvalid('sentinels', 'given with sentinelName', undefined);
    if (password !== undefined) {
      throw new PlugmqError(
        'CONFIG_INVALID',
        'sentinelPassword needs Sentinels (sentinels or a redis+sentinel:// url)',
      );
    }
    return undefined;
  }
  const sentinels = sentinelsOption(config.sentinels);
  if (name === undefined) throw configInvalid('sentinelName', "the master's name (with sentinels)", name);
  return { sentinels, name };
}

/** How a Sentinel set-up shows in logs and health(): `redis+sentinel://h1:p1,h2:p2/name`, no credentials. */
export function sentinelDisplayUrl(target: SentinelTarget): string {
  const hosts = target.sentinels.map(
    ({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`,
  );
  return `redis+sentinel://${hosts.join(',')}/${target.name}`;
}
