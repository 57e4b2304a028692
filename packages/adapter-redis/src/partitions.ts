import type { StreamRef } from './reader.js';
import { groupKeys, leaseKey, membersKey } from './topology.js';

/**
 * Ordering by key (`partitions: N`), the Kafka way on Redis' own primitives:
 *
 * - A keyed message goes to partition stream `<prefix>:{<type>}:k<p>`, p = partitionOfKey(key, N)
 *   (FNV-1a, the kit's one copy, the same hash as the RabbitMQ driver). Unkeyed messages stay on
 *   the type's stream, read by every subscription of the group as before (they compete).
 * - Each partition of a group is read by one subscription at a time: the one holding its lease
 *   `<prefix>:{<type>}:lease:<group>:<p>` (partition-leases.ts). A partition's stream is one
 *   stream, read in id order by one consumer, and core runs one key's deliveries of a
 *   subscription one after the other: so a key's messages are handled in publish order.
 * - Every key carries the type's hash tag, so the lease script and the publish script are
 *   single-slot on a Cluster.
 *
 * Not ordered, as on the other drivers: a retried message waits in the partition's retry stream
 * (`:k<p>:retry:<group>`) while later messages of its key go on.
 */

/** The streams a partition owner reads: the partition's stream and the group's retry stream of it. */
export function partitionStreams(
  prefix: string,
  type: string,
  group: string,
  partition: number,
): StreamRef[] {
  const keys = groupKeys(prefix, type, group, 0, partition);
  return [
    { key: keys.stream, keys, retry: false },
    { key: keys.retry, keys, retry: true },
  ];
}

/** The keys one balance round of a (type, group) touches: the members set, then every lease. */
export function leaseKeys(prefix: string, type: string, group: string, partitions: number): string[] {
  return [
    membersKey(prefix, type, group),
    ...Array.from({ length: partitions }, (_, partition) => leaseKey(prefix, type, group, partition)),
  ];
}
