import type { BrokerHandle, BrokerKind, ProxiedListener } from './types.js';

/** Kinds whose clients go on to dial the addresses the broker advertises, not only the URL. */
const DIALS_ADVERTISED_ADDRESSES: ReadonlySet<BrokerKind> = new Set(['kafka']);

/**
 * Where a TCP proxy must listen (`listenPort` 0: any free port) and what it must forward to so that
 * every connection a client of `broker` makes passes through it, the client being given the URL
 * with the proxy's port. A string instead when no proxy can stand in front of this broker: Kafka
 * without the listener of `proxiedListener` (e.g. one from PLUGMQ_KAFKA_URL).
 */
export function proxyRoute(
  broker: Pick<BrokerHandle, 'url' | 'proxied'> & { kind: string; source: string },
): ProxiedListener | string {
  if (broker.proxied) return broker.proxied;
  if (DIALS_ADVERTISED_ADDRESSES.has(broker.kind as BrokerKind)) {
    return (
      `the ${broker.kind} broker (${broker.source}) has no listener advertised at a proxy's port, and its ` +
      'clients dial the advertised address, not the proxy: start it with proxiedListener: true'
    );
  }
  const { hostname, port } = new URL(broker.url);
  return { listenPort: 0, targetHost: hostname, targetPort: Number(port) };
}
