import { randomUUID } from 'node:crypto';
import { type Envelope, WIRE, wireAttempt, wireTimestamp } from '@plugmq/core/driver';
import type { Message, Options } from 'amqplib';
import { PARTITION_HEADER } from './partitions.js';
import { WAIT_HEADER } from './topology.js';

/**
 * Envelope ↔ AMQP message. Standard properties carry what AMQP has a slot for: message id, type,
 * content type, priority, persistent delivery mode, and the publish time in **milliseconds** since
 * the epoch in `timestamp` (AMQP leaves the unit open; a headers table only for it would cost a
 * table encode and decode per message). Headers carry the application headers plus `x-plugmq-key`
 * and `x-plugmq-attempt` (when > 1); a message without either has an empty headers table.
 */
export function envelopeToPublishOptions(envelope: Envelope, mandatory: boolean): Options.Publish {
  // Built field by field, without spreads: this runs once per published message.
  const options: Options.Publish = {
    messageId: envelope.id,
    type: envelope.type,
    contentType: envelope.contentType,
    persistent: true,
    mandatory,
    timestamp: envelope.timestamp,
  };
  const application = envelope.headers;
  let headers: Record<string, unknown> | undefined;
  for (const name in application) {
    headers ??= {};
    headers[name] = application[name];
  }
  if (envelope.key !== undefined) {
    headers ??= {};
    headers[WIRE.key] = envelope.key;
  }
  if (envelope.attempt !== 1) {
    headers ??= {};
    headers[WIRE.attempt] = envelope.attempt;
  }
  if (headers !== undefined) options.headers = headers;
  if (envelope.priority !== undefined) options.priority = envelope.priority;
  return options;
}

const NO_HEADERS: Readonly<Record<string, unknown>> = Object.freeze({});

/** Below this a `timestamp` is in seconds (other producers' convention), above it in milliseconds. */
const SECONDS_LIMIT = 100_000_000_000;

/** Headers RabbitMQ or the driver add on the way; not part of the application's headers. */
function isTransportHeader(name: string): boolean {
  return (
    name === 'x-death' ||
    name.startsWith('x-first-death-') ||
    name.startsWith('x-last-death-') ||
    name === WAIT_HEADER ||
    name === PARTITION_HEADER ||
    name === 'CC' ||
    name === 'BCC'
  );
}

function headerString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  // Tables and arrays (foreign producers) have no string form an application would expect.
  return undefined;
}

/**
 * Rebuilds the envelope of a delivered message. A foreign or malformed message (no PlugMQ headers,
 * odd header values) still becomes an envelope, with a fresh id as fallback,
 * so core can dead-letter it with DECODE_FAILED instead of the consumer stalling on it.
 * The type is the queue's: each group queue receives exactly one type.
 */
export function envelopeFromMessage(message: Message, queueType: string): Envelope {
  const { properties } = message;
  const raw = (properties.headers ?? NO_HEADERS) as Record<string, unknown>;
  const headers: Record<string, string> = {};
  let key: string | undefined;
  let timestamp: number | undefined;
  let attempt = 1;
  for (const name in raw) {
    const value = raw[name];
    if (name === WIRE.key) key = headerString(value);
    else if (name === WIRE.timestamp) timestamp = wireTimestamp(value);
    else if (name === WIRE.attempt) attempt = wireAttempt(value);
    else if (name === WIRE.id || name === WIRE.type || name === WIRE.contentType || name === WIRE.priority) {
      // String-header form of the same metadata (written by other tools); properties win.
    } else if (!isTransportHeader(name)) {
      const text = headerString(value);
      if (text !== undefined) headers[name] = text;
    }
  }
  const id =
    typeof properties.messageId === 'string' && properties.messageId ? properties.messageId : undefined;
  const stamp =
    typeof properties.timestamp === 'number' && properties.timestamp > 0 ? properties.timestamp : undefined;
  const published = stamp === undefined ? undefined : stamp < SECONDS_LIMIT ? stamp * 1000 : stamp;
  // Optional fields assigned after the literal, not spread into it: this runs once per delivery.
  const envelope: { -readonly [K in keyof Envelope]: Envelope[K] } = {
    id: id ?? headerString(raw[WIRE.id]) ?? randomUUID(),
    // The queue belongs to exactly one type: trust it over whatever a foreign producer wrote.
    type: queueType,
    timestamp: timestamp ?? published ?? Date.now(),
    headers,
    contentType:
      typeof properties.contentType === 'string'
        ? properties.contentType
        : (headerString(raw[WIRE.contentType]) ?? ''),
    body: message.content,
    attempt,
  };
  if (key !== undefined) envelope.key = key;
  if (typeof properties.priority === 'number') envelope.priority = properties.priority;
  return envelope;
}
