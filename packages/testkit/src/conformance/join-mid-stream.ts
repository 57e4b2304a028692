import type { QueueManager } from '@plugmq/core';
import { waitFor } from './helpers.js';

export interface JoinMidStreamOptions {
  readonly type: string;
  /** The group that joins; it must be new to the type. Default `'late'`. */
  readonly group?: string;
  /** Messages published, bodies 0 … count − 1 (default 2 000); the group joins at count / 2. */
  readonly count?: number;
  /** How long to wait for every body once the last publish resolved (default 30 000 ms). */
  readonly timeoutMs?: number;
}

/**
 * For drivers' replay tests: `producer` publishes `count` messages with 32 in flight, and halfway
 * `consumer` subscribes a new group with `startFrom: 'earliest'` while publishes are still in
 * flight on other connections. Resolves once every body arrived, with how often each did; rejects
 * naming the count still missing after `timeoutMs`. A replay that races the publishes around
 * the moment the group is created loses messages here.
 */
export async function joinMidStream(
  producer: QueueManager,
  consumer: QueueManager,
  options: JoinMidStreamOptions,
): Promise<Map<number, number>> {
  const { type, group = 'late', count = 2_000, timeoutMs = 30_000 } = options;
  const seen = new Map<number, number>();
  let next = 0;
  let joined: Promise<unknown> | undefined;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      if (index === Math.floor(count / 2)) {
        joined = consumer.consume<number>(
          type,
          (message) => {
            seen.set(message.body, (seen.get(message.body) ?? 0) + 1);
          },
          { group, startFrom: 'earliest', concurrency: 16 },
        );
      }
      await producer.publish(type, index);
    }
  };
  await Promise.all(Array.from({ length: 32 }, lane));
  await joined;
  await waitFor(() => seen.size === count, timeoutMs, `all ${count} messages (${count - seen.size} missing)`);
  return seen;
}
