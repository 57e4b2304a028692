import type { Base } from '@platformatic/kafka';

type Library = typeof import('@platformatic/kafka');
type ConnectionCallback = (error: Error | null, connection?: unknown) => void;
type GetConnection = (this: unknown, broker: unknown, callback: ConnectionCallback) => void;

/**
 * Makes a client of @platformatic/kafka answer a request for a broker its cached metadata no
 * longer lists with a retriable network error, and forget that metadata.
 *
 * The library looks the broker of a request (a partition's leader, the group's coordinator) up
 * in its cached metadata and hands the result to its connection pool, which throws when it is
 * `undefined`: inside a callback, so the exception is uncaught and ends the process. The cluster
 * fault suite met it when the coordinator's node was down (consumer.js, 1.35.0). The lookup goes
 * through the exported `kGetConnection` hook, so an own property on the instance takes it over
 * for this client only; nothing is patched in the library.
 */
export function guardBrokerLookups<T extends Base>(lib: Library, client: T): T {
  const key = lib.kGetConnection;
  const original = (client as unknown as Record<symbol, GetConnection>)[key]!;
  Object.defineProperty(client, key, {
    configurable: true,
    value(broker: unknown, callback: ConnectionCallback): void {
      if (broker === undefined || broker === null) {
        client.clearMetadata();
        callback(
          new lib.NetworkError(
            'the broker for this request is not in the cached cluster metadata (a node left or restarted); the metadata is fetched again',
          ),
        );
        return;
      }
      original.call(client, broker, callback);
    },
  });
  return client;
}
