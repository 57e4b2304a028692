import {
  DEAD_LETTER_GROUP,
  type DeadLetterState,
  type Envelope,
  type GroupState,
  type TransportInspection,
  type TransportInspectQuery,
} from '@plugmq/core/driver';
import type { MemoryBroker } from './memory-broker.js';

/** Age of the oldest message (by publish timestamp); a walk of at most one buffer (bufferSize). */
function oldestAgeMs(envelopes: Iterable<Envelope>, now: number): number | undefined {
  let oldest = Number.POSITIVE_INFINITY;
  for (const envelope of envelopes) if (envelope.timestamp < oldest) oldest = envelope.timestamp;
  return oldest === Number.POSITIVE_INFINITY ? undefined : Math.max(0, now - oldest);
}

/** Everything is in this process: exact figures, read from the broker's own queues. */
export function inspectMemory(broker: MemoryBroker, query: TransportInspectQuery): TransportInspection {
  const now = Date.now();
  const only = query.types === undefined ? undefined : new Set(query.types);
  const groups: GroupState[] = [];
  const deadLetters = new Map<string, DeadLetterState>();
  for (const queue of broker.queues()) {
    if (only !== undefined && !only.has(queue.type)) continue;
    if (queue.group === DEAD_LETTER_GROUP) {
      deadLetters.set(queue.type, {
        type: queue.type,
        count: queue.depth,
        oldestAgeMs: oldestAgeMs(queue.waiting(), now),
      });
      continue;
    }
    groups.push({
      type: queue.type,
      group: queue.group,
      backlog: queue.depth,
      inFlight: queue.inFlight,
      oldestWaitingMs: oldestAgeMs(queue.waiting(), now),
      consumers: queue.consumerCount,
      retryBacklog: queue.retrying,
    });
  }
  for (const type of query.deadLetterTypes) {
    if (!deadLetters.has(type)) deadLetters.set(type, { type, count: 0, oldestAgeMs: undefined });
  }
  // Asked-for pairs the broker has never seen: nothing waits for them.
  for (const { type, group } of query.groups ?? []) {
    if (broker.queue(type, group) !== undefined) continue;
    groups.push({
      type,
      group,
      backlog: 0,
      inFlight: 0,
      oldestWaitingMs: undefined,
      consumers: 0,
      retryBacklog: 0,
    });
  }
  return { groups, deadLetters: [...deadLetters.values()] };
}

/** Up to `limit` waiting messages of (type, group) in delivery order, left where they are. */
export function peekMemory(broker: MemoryBroker, type: string, group: string, limit: number): Envelope[] {
  const queue = broker.queue(type, group);
  const found: Envelope[] = [];
  if (queue === undefined) return found;
  for (const envelope of queue.waiting()) {
    if (found.length >= limit) break;
    found.push(envelope);
  }
  return found;
}
