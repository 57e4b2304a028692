import type { PlugmqConfig } from './config.js';
import { PlugmqError } from './errors.js';
import { nearest } from './suggest.js';
import { redactCredentials } from './url.js';

const CORE_TIMEOUTS = ['publishTimeoutMs', 'closeTimeoutMs', 'requestTimeoutMs'] as const;
/** The options core reads itself, valid with every driver. */
export const CORE_OPTIONS: readonly string[] = ['driver', 'url', ...CORE_TIMEOUTS, 'logger', 'catalog'];

export function configInvalid(field: string, allowed: string, value: unknown): PlugmqError {
  const shown =
    typeof value === 'string'
      ? JSON.stringify(redactCredentials(value))
      : typeof value === 'number'
        ? String(value)
        : typeof value;
  return new PlugmqError('CONFIG_INVALID', `${field} must be ${allowed} (got ${shown})`);
}

/**
 * A driver's integer option: `fallback` when absent, else an integer of at least `min`, or
 * CONFIG_INVALID naming the field.
 */
export function integerOption(config: PlugmqConfig, field: string, fallback: number, min: number): number;
export function integerOption(
  config: PlugmqConfig,
  field: string,
  fallback: number | undefined,
  min: number,
): number | undefined;
export function integerOption(
  config: PlugmqConfig,
  field: string,
  fallback: number | undefined,
  min: number,
): number | undefined {
  const value = config[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw configInvalid(field, `an integer >= ${min}`, value);
  }
  return value;
}

/**
 * TLS options a driver hands to Node's `tls.connect` (through its client) as they are. Drivers
 * share the type and its check; each adds the default it needs (a `rediss://` or `amqps://` URL
 * turns TLS on by itself).
 */
export interface TlsOptions {
  ca?: string | Buffer | (string | Buffer)[];
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  pfx?: string | Buffer;
  servername?: string;
  rejectUnauthorized?: boolean;
  [option: string]: unknown;
}

/** `config[field]` as TLS options (an object, or undefined when unset); CONFIG_INVALID otherwise. */
export function tlsOption(config: PlugmqConfig, field = 'tls'): TlsOptions | undefined {
  const value = config[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw configInvalid(field, 'an object of tls.connect options (ca, cert, key, …)', value);
  }
  return value as TlsOptions;
}

/** Checks the fields core owns; drivers check theirs in `validate`. */
export function validateCoreConfig(config: unknown): PlugmqConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw configInvalid('config', "an object such as { driver: 'memory' }", config);
  }
  const value = config as PlugmqConfig;
  if (typeof value.driver !== 'string' || value.driver.length === 0) {
    throw configInvalid(
      'driver',
      "a driver name such as 'memory', 'rabbitmq', 'kafka' or 'redis'",
      value.driver,
    );
  }
  if (value.url !== undefined && typeof value.url !== 'string') {
    throw configInvalid('url', 'a connection URL string', value.url);
  }
  for (const field of CORE_TIMEOUTS) {
    const timeout = value[field];
    if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1)) {
      throw configInvalid(field, 'a positive integer number of milliseconds', timeout);
    }
  }
  return value;
}

function envName(option: string): string {
  return `PLUGMQ_${option.replace(/([A-Z])/g, '_$1').toUpperCase()}`;
}

/**
 * A driver that declares its options gets no other: a misspelled name (`keyPrefx`), typed or
 * read from the environment, fails with CONFIG_INVALID naming it and the nearest known option.
 */
export function checkKnownOptions(config: PlugmqConfig, driver: string, options?: readonly string[]): void {
  if (!options) return;
  const known = new Set([...CORE_OPTIONS, ...options]);
  for (const field of Object.keys(config)) {
    if (known.has(field)) continue;
    const guess = nearest(field, known);
    throw new PlugmqError(
      'CONFIG_INVALID',
      `unknown option ${field} for driver ${driver}` +
        (guess ? `; did you mean ${guess}?` : '') +
        ` (${envName(field)} when read by configFromEnv). ` +
        `Options of ${driver}: ${[...options].sort().join(', ')}; core: ${CORE_OPTIONS.join(', ')}`,
    );
  }
}

function camelCase(name: string): string {
  return name.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(raw) && raw.length < 16) return Number(raw);
  return raw;
}

/**
 * PLUGMQ_* variables of PlugMQ's own tooling (the testkit's brokers, benchmarks), not options:
 * they sit in the same environment as an application's and must not reach the driver.
 */
const TOOLING =
  /^(?:(?:rabbitmq|kafka|redis)(?:Url|Image|Port|Libs)|kafkaControllerPort|runId|podmanSocket|cache|brokersState|chromium|bench[A-Za-z0-9]*)$/;

/**
 * Reads PLUGMQ_DRIVER (default 'memory'), PLUGMQ_URL and every other PLUGMQ_<NAME> as the
 * camelCased option `<name>` (PLUGMQ_PUBLISH_TIMEOUT_MS → publishTimeoutMs); 'true'/'false'
 * and plain numbers are converted. A name the driver does not know is refused by
 * createQueueManager like a typed one (CONFIG_INVALID): a typo in a deployment's environment
 * fails at startup instead of being ignored.
 */
export function configFromEnv(env: Record<string, string | undefined> = process.env): PlugmqConfig {
  const config: PlugmqConfig = { driver: 'memory' };
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('PLUGMQ_') || raw === undefined || raw === '') continue;
    const option = camelCase(name.slice('PLUGMQ_'.length));
    if (option === 'driver' || option === 'url') config[option] = raw;
    else if (!TOOLING.test(option)) config[option] = parseValue(raw);
  }
  return config;
}
