import type { QueueManager } from '@plugmq/core';
import { type DeliveryLedger, kafkaBrokers } from '@plugmq/testkit';
import { Kafka, Partitioners } from 'kafkajs';

// The publish stream and the bookkeeping of test/faults/cluster.test.ts: publishes with a
// caller's deadline (AbortSignal), keys whose partition is known, and each publish's timing, so
// a run can say which partitions kept flowing while a leader was dead.

const partitionerOf = Partitioners.DefaultPartitioner();

/** The partition kafkajs' default partitioner (the driver's) sends `key` to. */
export function partitionOfKey(key: string, partitions: number): number {
  return partitionerOf({
    topic: 'any',
    partitionMetadata: Array.from({ length: partitions }, (_, partitionId) => ({
      partitionId,
      leader: partitionId,
      replicas: [],
      isr: [],
      partitionErrorCode: 0,
    })),
    message: { key, value: null },
  });
}

/** `perPartition` keys for each of `partitions` partitions: keys[p] all hash to p. */
export function keysByPartition(partitions: number, perPartition: number): string[][] {
  const keys: string[][] = Array.from({ length: partitions }, () => []);
  for (let i = 0; keys.some((k) => k.length < perPartition) && i < 100_000; i++) {
    const key = `key-${i}`;
    const bucket = keys[partitionOfKey(key, partitions)] as string[];
    if (bucket.length < perPartition) bucket.push(key);
  }
  return keys;
}

export interface Timing {
  readonly index: number;
  readonly partition: number;
  readonly startedAt: number;
  /** When the publish resolved or rejected; undefined while it is pending. */
  settledAt?: number;
  ok?: boolean;
}

export interface ClusterStream {
  readonly manager: QueueManager;
  readonly type: string;
  readonly count: number;
  /** Publishes in flight at once. */
  readonly inFlight: number;
  readonly ledger: DeliveryLedger;
  /** The key of publish `index`, and the partition it goes to. */
  keyOf(index: number): { key: string; partition: number };
  /** Publish `index` starts no earlier than `index / ratePerSec` s after the stream started. */
  readonly ratePerSec?: number;
  /** Each publish's deadline, as the caller's AbortSignal (default 10 s). */
  readonly timeoutMs?: number;
  /** Before publish `index`: a promise to wait for (a restart to finish), or undefined. */
  gate?(index: number): Promise<void> | undefined;
  /** After each resolved publish, with the number resolved so far. */
  onResolved?(resolved: number): void;
  /** Stops starting publishes once it returns true (the stream ends early). */
  stop?(): boolean;
  readonly timings?: Timing[];
  /** Publish ids are `<idPrefix>:<index>` (default: the type). */
  readonly idPrefix?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the stream to its end; every outcome lands in the ledger (and the timings). */
export async function publishKeyed(stream: ClusterStream): Promise<void> {
  const { manager, type, count, ledger } = stream;
  const started = Date.now();
  const prefix = stream.idPrefix ?? type;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count && !stream.stop?.()) {
      const index = next++;
      const hold = stream.gate?.(index);
      if (hold) await hold;
      if (stream.ratePerSec) {
        const due = started + (index * 1000) / stream.ratePerSec;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      const id = `${prefix}:${index}`;
      const { key, partition } = stream.keyOf(index);
      const timing: Timing = { index, partition, startedAt: Date.now() };
      stream.timings?.push(timing);
      try {
        await manager.publish(type, index, {
          id,
          key,
          signal: AbortSignal.timeout(stream.timeoutMs ?? 10_000),
        });
        timing.ok = true;
        ledger.resolved.add(id);
        stream.onResolved?.(ledger.resolved.size);
      } catch (error) {
        timing.ok = false;
        ledger.rejected.set(id, String((error as { code?: unknown }).code ?? error));
      }
      timing.settledAt = Date.now();
    }
  };
  await Promise.all(Array.from({ length: Math.min(stream.inFlight, count) }, lane));
}

/**
 * Creates `topic` (replication 3); wait with `cluster.waitUntilInSync(topic)` before using it. The driver would create it on the
 * first consume, but on a fresh cluster that consume can fail with "This server does not host
 * this topic-partition" (a node that has not yet seen the topic answers kafkajs' metadata refresh);
 * these runs are about publishing, so they start from a topic every node knows.
 */
export async function createTopic(
  url: string,
  topic: string,
  partitions: number,
  layout?: TopicLayout,
): Promise<void> {
  const admin = new Kafka({ brokers: kafkaBrokers(url), logLevel: 0 }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [
        layout
          ? {
              topic,
              replicaAssignment: layout.replicas.map((replicas, partition) => ({
                partition,
                replicas: [...replicas],
              })),
              configEntries: [{ name: 'min.insync.replicas', value: String(layout.minInsyncReplicas) }],
            }
          : { topic, numPartitions: partitions, replicationFactor: 3 },
      ],
      // kafkajs' own wait fails the same way; the caller waits through the cluster handle.
      waitForLeaders: false,
    });
  } finally {
    await admin.disconnect();
  }
}

/** A topic placed by hand: each partition's replicas (node ids, the first one leads). */
export interface TopicLayout {
  readonly replicas: readonly (readonly number[])[];
  readonly minInsyncReplicas: number;
}

/**
 * How many of `ids` are in `topic`'s log (read whole by a raw consumer): a lost id found there
 * was stored and never delivered; one not found was resolved but never written.
 */
export async function idsInLog(url: string, topic: string, ids: readonly string[]): Promise<string> {
  const kafka = new Kafka({ brokers: kafkaBrokers(url), logLevel: 0 });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((sum, end) => sum + Number(end.high), 0);
  const wanted = new Set(ids);
  let found = 0;
  let read = 0;
  const reader = kafka.consumer({
    groupId: `${topic}.inspect`,
    sessionTimeout: 6_000,
    heartbeatInterval: 500,
  });
  await reader.connect();
  await reader.subscribe({ topic, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      read++;
      const id = message.headers?.['x-plugmq-id']?.toString();
      if (id && wanted.delete(id)) found++;
    },
  });
  const deadline = Date.now() + 30_000;
  while (read < total && Date.now() < deadline) await sleep(100);
  await reader.disconnect();
  return `${found} of ${ids.length} lost in the log (${read}/${total} read)`;
}

/** The `q` quantile (0…1) of `values`, 0 when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
