import type { Envelope } from '@plugmq/core/driver';
import { isBusyGroup, type RedisClient } from './connection.js';
import type { StreamRef } from './reader.js';
import { againWhileTransient } from './transient.js';
import { envelopeFromFields } from './wire.js';

/**
 * A consumer's membership in the groups of its streams: created when a subscription starts,
 * left when it stops (with what Redis still assigns to it handed back).
 */

/**
 * Creates `group` on each stream, one XGROUP CREATE at a time: on a cluster, ioredis'
 * auto-pipelining would otherwise batch creates for different slots together and fail the batch
 * on the first MOVED. A Cluster failing over refuses for a while (CLUSTERDOWN): tried again while
 * `stillTrying` says so. A create that ran before its connection dropped answers BUSYGROUP the
 * second time.
 */
export async function createGroups(
  client: RedisClient,
  group: string,
  streams: readonly StreamRef[],
  from: '0' | '$',
  stillTrying: () => boolean,
): Promise<void> {
  for (const stream of streams) {
    try {
      // A retry stream only ever holds this group's entries: its group always reads from 0.
      await againWhileTransient(
        () => client.xgroup('CREATE', stream.key, group, stream.retry ? '0' : from, 'MKSTREAM'),
        stillTrying,
      );
    } catch (error) {
      if (!isBusyGroup(error)) throw error;
    }
  }
}

/** What a subscription that stops does with the entries Redis still assigns to it. */
export interface LeavingHost {
  readonly group: string;
  readonly consumer: string;
  isInFlight(stream: StreamRef, id: string): boolean;
  ack(stream: StreamRef, id: string): Promise<void>;
  requeue(stream: StreamRef, id: string, envelope: Envelope, delayMs: number): Promise<void>;
}

/**
 * Entries assigned to this consumer that no handler holds (a cut read): back to the group. Not
 * for partition streams: what a partition owner leaves pending there is claimed, in order, by
 * the partition's next owner (reader.ts, takeOver).
 */
export async function handBackOrphans(
  host: LeavingHost,
  client: RedisClient,
  streams: readonly StreamRef[],
): Promise<void> {
  for (const stream of streams) {
    const pending = (await client.xpending(stream.key, host.group, '-', '+', 1000, host.consumer)) as [
      string,
      string,
      number,
      number,
    ][];
    for (const [id] of pending) {
      if (host.isInFlight(stream, id)) continue;
      const entries = (await client.xrangeBuffer(stream.key, id, id)) as [Buffer, Buffer[]][];
      const fields = entries[0]?.[1] ?? null;
      if (fields === null) await host.ack(stream, id);
      else await host.requeue(stream, id, envelopeFromFields(fields, { type: stream.keys.type, id }), 0);
    }
  }
}

/** Once stopped and settled: the consumer leaves each stream's group where it holds no pending entry. */
export async function removeConsumer(
  host: LeavingHost,
  client: RedisClient,
  streams: readonly StreamRef[],
): Promise<void> {
  for (const stream of streams) {
    const pending = (await client.xpending(stream.key, host.group, '-', '+', 1, host.consumer)) as unknown[];
    if (pending.length === 0) await client.xgroup('DELCONSUMER', stream.key, host.group, host.consumer);
  }
}
