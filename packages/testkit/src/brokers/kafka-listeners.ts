import { freePorts } from './ports.js';
import type { ProxiedListener } from './types.js';

// The listeners of a single-node KRaft broker on free loopback ports, shared by the container and
// the local-process sources so both are configured alike (tools/brokers/kafka/server.properties).

export interface KafkaListenerPlan {
  /** Where clients bootstrap: the PLAINTEXT listener, advertised as itself. */
  readonly port: number;
  readonly controllerPort: number;
  /** `listeners`, `advertised.listeners` and `listener.security.protocol.map` values. */
  readonly listeners: string;
  readonly advertised: string;
  readonly protocolMap: string;
  readonly proxied?: ProxiedListener;
}

/**
 * With `withProxied`, a third listener, PROXIED, listens on an internal port and is advertised at
 * another port reserved for a test's TCP proxy: clients that bootstrap through the proxy are told
 * to dial the proxy for every later connection. Controller and inter-broker traffic stay on their
 * own listeners, and PLAINTEXT clients never see the PROXIED address (Kafka answers metadata with
 * the listener the request arrived on).
 */
export async function kafkaListeners(withProxied: boolean): Promise<KafkaListenerPlan> {
  const [port, controllerPort, internalPort, proxyPort] = await freePorts(withProxied ? 4 : 2);
  if (port === undefined || controllerPort === undefined) throw new Error('could not get free ports');
  const listeners = [`PLAINTEXT://127.0.0.1:${port}`, `CONTROLLER://127.0.0.1:${controllerPort}`];
  const advertised = [`PLAINTEXT://127.0.0.1:${port}`];
  const protocols = ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT'];
  let proxied: ProxiedListener | undefined;
  if (internalPort !== undefined && proxyPort !== undefined) {
    listeners.push(`PROXIED://127.0.0.1:${internalPort}`);
    advertised.push(`PROXIED://127.0.0.1:${proxyPort}`);
    protocols.push('PROXIED:PLAINTEXT');
    proxied = { listenPort: proxyPort, targetHost: '127.0.0.1', targetPort: internalPort };
  }
  return {
    port,
    controllerPort,
    listeners: listeners.join(','),
    advertised: advertised.join(','),
    protocolMap: protocols.join(','),
    proxied,
  };
}
