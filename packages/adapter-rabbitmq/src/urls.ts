import { maskUrl, parseConnectionUrl } from '@plugmq/core/driver';

const PROTOCOLS = ['amqp:', 'amqps:'] as const;

/**
 * Splits a broker URL list into one full URL per node. Accepted forms:
 * `amqp://u:p@a:5672,b:5672/vhost` (hosts share scheme, credentials, vhost and query) and
 * `amqp://a,amqp://b` (independent URLs); both may be mixed. Throws CONFIG_INVALID naming `field`.
 */
export function parseBrokerUrls(value: unknown, field: string): string[] {
  // parseConnectionUrl gives the CONFIG_INVALID message for a non-string.
  if (typeof value !== 'string' || value.length === 0)
    return [parseConnectionUrl(value, PROTOCOLS, field).href];
  const pieces = value
    .split(',')
    .map((piece) => piece.trim())
    .filter((piece) => piece.length > 0);
  const first = pieces[0] ?? value;
  if (pieces.length <= 1 || pieces.every((piece) => piece.includes('://'))) {
    return pieces.map((piece) => {
      parseConnectionUrl(piece, PROTOCOLS, field);
      return piece;
    });
  }
  // Host list inside one URL: `scheme://userinfo@host1,host2:port/vhost?query`.
  const match = /^(amqps?:\/\/)([^@/]*@)?([^/?]*)(.*)$/.exec(value.trim());
  if (!match) return [parseConnectionUrl(first, PROTOCOLS, field).href];
  const [, scheme = '', userinfo = '', hosts = '', rest = ''] = match;
  return hosts.split(',').map((host) => {
    const url = `${scheme}${userinfo}${host.trim()}${rest}`;
    parseConnectionUrl(url, PROTOCOLS, field);
    return url;
  });
}

/** A URL for logs and errors: credentials masked. */
export function describeUrl(url: string): string {
  return maskUrl(url);
}
