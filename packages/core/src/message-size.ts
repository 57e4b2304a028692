import { PlugmqError } from './errors.js';
import type { OutgoingEnvelope } from './transport.js';

/** A broker's largest message, as a driver option with the broker's own default. */
export interface MessageSizeLimit {
  readonly driver: string;
  /** The driver option's value (`maxMessageBytes`). */
  readonly maxBytes: number;
  /** What to raise on the broker as well, e.g. "the broker's message.max.bytes". */
  readonly brokerSetting: string;
}

/**
 * The body's size in bytes. A transport that writes text gets an empty `body` and the JSON text:
 * its UTF-8 size is only counted when 3 bytes per character could exceed `limit`.
 */
export function bodyBytes(envelope: OutgoingEnvelope, limit: number): number {
  const bytes = envelope.body.byteLength;
  const text = envelope.text;
  if (bytes > 0 || text === undefined) return bytes;
  return text.length * 3 <= limit ? text.length : Buffer.byteLength(text, 'utf8');
}

/** INVALID_ARGUMENT for a message over the limit, naming the limit and how to change it. */
export function messageTooLarge(
  envelope: OutgoingEnvelope,
  bytes: number,
  limit: MessageSizeLimit,
): PlugmqError {
  return new PlugmqError(
    'INVALID_ARGUMENT',
    `message ${envelope.id} of type ${envelope.type} is ${bytes} bytes, over the ${limit.driver} limit of ` +
      `${limit.maxBytes} bytes (option maxMessageBytes): send a smaller body, or raise ${limit.brokerSetting} ` +
      'and set maxMessageBytes to match; nothing was sent',
  );
}

/**
 * Refuses, before anything is sent, a batch holding a body over the limit: the broker would
 * refuse it anyway, later and less clearly (or by closing the channel).
 */
export function assertBodySizes(envelopes: readonly OutgoingEnvelope[], limit: MessageSizeLimit): void {
  for (const envelope of envelopes) {
    const bytes = bodyBytes(envelope, limit.maxBytes);
    if (bytes > limit.maxBytes) throw messageTooLarge(envelope, bytes, limit);
  }
}
