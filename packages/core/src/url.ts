import { PlugmqError } from './errors.js';

/**
 * Masks the password of every URL in `text` (a URL, or a client's error message):
 * `amqp://user:secret@host` → `amqp://user:***@host`. For logs, errors and inspect output.
 */
export function redactCredentials(text: string): string {
  return text.replace(/(\/\/[^/@\s:]*):([^/@\s]*)@/g, '$1:***@');
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
    throw new PlugmqError('CONFIG_INVALID', `${field} is not a valid URL: ${redactCredentials(value)}`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `${field} must use ${protocols.join(' or ')} (got ${url.protocol} in ${redactCredentials(value)})`,
    );
  }
  if (!url.hostname)
    throw new PlugmqError('CONFIG_INVALID', `${field} has no host: ${redactCredentials(value)}`);
  return url;
}

/**
 * Splits a connection URL list into one full URL per node. Two forms, which may be mixed:
 * `scheme://user:pass@a:1,b:2/path?query` (the hosts share scheme, credentials, path and query)
 * and `scheme://a,scheme://b` (independent URLs). Each is checked with parseConnectionUrl;
 * CONFIG_INVALID names `field` and never repeats a password.
 */
export function parseUrlList(value: unknown, protocols: readonly string[], field = 'url'): string[] {
  // parseConnectionUrl gives the CONFIG_INVALID message for a non-string.
  if (typeof value !== 'string' || value.length === 0)
    return [parseConnectionUrl(value, protocols, field).href];
  const pieces = value
    .split(',')
    .map((piece) => piece.trim())
    .filter((piece) => piece.length > 0);
  const first = pieces[0] ?? value;
  if (pieces.length <= 1 || pieces.every((piece) => piece.includes('://'))) {
    return pieces.map((piece) => {
      parseConnectionUrl(piece, protocols, field);
      return piece;
    });
  }
  // A host list inside one URL: `scheme://userinfo@host1,host2:port/path?query`.
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^@/]*@)?([^/?]*)(.*)$/i.exec(value.trim());
  if (!match) return [parseConnectionUrl(first, protocols, field).href];
  const [, scheme = '', userinfo = '', hosts = '', rest = ''] = match;
  return hosts.split(',').map((host) => {
    const url = `${scheme}${userinfo}${host.trim()}${rest}`;
    parseConnectionUrl(url, protocols, field);
    return url;
  });
}
