import {
  describeError,
  OverdueWatched,
  PlugmqError,
  redactCredentials,
  type TransportPublishContext,
} from '@plugmq/core/driver';
import type { AcknowledgedPartition, OutgoingRecord } from './connection.js';

/** One `publish` call: resolves when every record of it was acknowledged by its partition's leader. */
export class PendingPublish extends OverdueWatched {
  /** Records not yet acknowledged; the publish resolves when this reaches 0. */
  remaining: number;

  constructor(
    readonly records: readonly OutgoingRecord[],
    context: TransportPublishContext,
    readonly resolve: () => void,
    readonly reject: (error: unknown) => void,
  ) {
    super(context);
    this.remaining = records.length;
  }
}

/**
 * One partition's records in publish order. At most one send of them is in flight, so a
 * partition's records reach the broker in order, and a failed send goes back to the front.
 * Parallel arrays rather than an entry object per record: this is the per-message path.
 */
export class Lane {
  pendings: PendingPublish[] = [];
  records: OutgoingRecord[] = [];
  /** The records of the send in flight (undefined: none). */
  sentPendings: PendingPublish[] | undefined = undefined;
  sentRecords: OutgoingRecord[] | undefined = undefined;
  /** Failed sends in a row; reset by an acknowledged one. */
  failures = 0;
  retryAt = 0;
  /** In the publisher's `ready` list. */
  queued = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}
}

export interface TopicState {
  lanes: Lane[];
  leaders: readonly number[];
  loadedAt: number;
  /** Round-robin position for records without a key. */
  next: number;
}

const RETRY_BACKOFF_MS = [100, 250, 500, 1_000];

export function isAcknowledged(lane: Lane, acknowledged: readonly AcknowledgedPartition[]): boolean {
  for (const entry of acknowledged) {
    if (entry.partition === lane.partition && entry.topicName === lane.topic) return true;
  }
  return false;
}

export function publishFailed(error: unknown): PlugmqError {
  return new PlugmqError(
    'PUBLISH_FAILED',
    `kafka rejected the publish: ${redactCredentials(describeError(error))}`,
    {
      cause: error,
    },
  );
}

export function backoffMs(attempt: number): number {
  return RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]!;
}

/** Keyless records start at a random partition per process, as Kafka clients do. */
export function randomStart(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}
