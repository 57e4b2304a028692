import { PlugmqError } from './errors.js';

/** `amqp://user:secret@host` → `amqp://user:***@host`; for logs, errors and inspect output. */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^/@\s:]*):([^/@\s]*)@/g, '$1:***@');
}

/** Masks every credential-bearing URL inside a free text (e.g. a client's error message). */
export function redactCredentials(text: string): string {
  return maskUrl(text);
}

/**
 * Parses one connection URL, checking its scheme; CONFIG_INVALID names the field and never
 * repeats the password.
 */
export function parseConnectionUrl(value: unknown, protocols: readonly string[], field = 'url'): URL {
  if (typeof value !== 'string' || value.length === 0) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `${field} must be a non-empty string such as ${protocols[0]}//host:port (got ${typeof value})`,
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PlugmqError('CONFIG_INVALID', `${field} is not a valid URL: ${maskUrl(value)}`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `${field} must use ${protocols.join(' or ')} (got ${url.protocol} in ${maskUrl(value)})`,
    );
  }
  if (!url.hostname) throw new PlugmqError('CONFIG_INVALID', `${field} has no host: ${maskUrl(value)}`);
  return url;
}
