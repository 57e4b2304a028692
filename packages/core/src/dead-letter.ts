import type { Envelope, OutgoingEnvelope } from './transport.js';

export const DEAD_LETTER_HEADERS = {
  error: 'x-plugmq-error',
  originalType: 'x-plugmq-original-type',
  attempts: 'x-plugmq-attempts',
} as const;

const MAX_ERROR_HEADER_LENGTH = 1024;

/**
 * The group every dead-letter type has from the moment a consumer that can dead-letter into it
 * subscribes (`Transport.ensureGroup`): dead letters wait there, at rest, until replayed or
 * removed, whether or not a dashboard or CLI was running when they arrived.
 */
export const DEAD_LETTER_GROUP = 'plugmq.dead-letters';

export function defaultDeadLetterType(type: string): string {
  return `${type}.dlq`;
}

/**
 * The copy of an exhausted (or undecodable) message that goes to the dead-letter type: same id,
 * body bytes, key and headers, plus the three x-plugmq-* headers; it starts again at attempt 1.
 */
export function deadLetterEnvelope(
  original: Envelope,
  deadLetterType: string,
  error: string,
): OutgoingEnvelope {
  return {
    id: original.id,
    type: deadLetterType,
    ...(original.key === undefined ? {} : { key: original.key }),
    timestamp: original.timestamp,
    contentType: original.contentType,
    body: original.body,
    value: original.value,
    attempt: 1,
    headers: {
      ...original.headers,
      [DEAD_LETTER_HEADERS.error]: error.slice(0, MAX_ERROR_HEADER_LENGTH),
      [DEAD_LETTER_HEADERS.originalType]: original.type,
      [DEAD_LETTER_HEADERS.attempts]: String(original.attempt),
    },
  };
}
