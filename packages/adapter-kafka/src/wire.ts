import { type Envelope, WIRE, wireAttempt, wirePriority, wireTimestamp } from '@plugmq/core/driver';
import type { FetchedRecord, OutgoingRecord } from './connection.js';

/** Epoch ms before which a message in a retry topic must not be delivered. */
export const DUE_HEADER = 'x-plugmq-due';

/**
 * An envelope as a Kafka record. Metadata Kafka already carries is not repeated in headers
 * (fewer headers is measurably faster to encode and decode): the key is the record key, the
 * timestamp the record timestamp, the type the topic (a header only where they differ: retry and
 * reply topics), and attempt 1 is the default.
 */
export function envelopeToRecord(
  envelope: Envelope,
  topic: string,
  extra?: Record<string, string>,
  partition?: number,
): OutgoingRecord {
  const headers: Record<string, string> = { ...envelope.headers };
  headers[WIRE.id] = envelope.id;
  headers[WIRE.contentType] = envelope.contentType;
  if (envelope.type !== topic) headers[WIRE.type] = envelope.type;
  if (envelope.attempt !== 1) headers[WIRE.attempt] = String(envelope.attempt);
  if (envelope.priority !== undefined) headers[WIRE.priority] = String(envelope.priority);
  if (extra) Object.assign(headers, extra);
  // One fixed object shape (no conditional spreads): this runs for every published message.
  return {
    topic,
    key: envelope.key,
    partition,
    timestamp: String(envelope.timestamp),
    value: envelope.body,
    headers,
  };
}

/** A v2 record batch's header (61 bytes) and a record's own varints at their largest (21). */
const RECORD_OVERHEAD = 82;
/** A header's two length varints at their largest. */
const HEADER_OVERHEAD = 10;

function utf8Bytes(text: string, exact: boolean): number {
  return exact ? Buffer.byteLength(text, 'utf8') : text.length * 3;
}

/**
 * What the broker counts against `message.max.bytes` for this record sent alone (uncompressed):
 * an upper bound, so a record under the limit is never refused here.
 */
export function recordBytes(record: OutgoingRecord, limit: number): number {
  const measure = (exact: boolean): number => {
    let bytes = RECORD_OVERHEAD + record.value.byteLength;
    if (record.key !== undefined) bytes += utf8Bytes(record.key, exact);
    for (const name in record.headers) {
      bytes += HEADER_OVERHEAD + utf8Bytes(name, exact) + utf8Bytes(record.headers[name]!, exact);
    }
    return bytes;
  };
  // Three bytes per character bound the UTF-8 size; count exactly only near the limit.
  const bound = measure(false);
  return bound <= limit ? bound : measure(true);
}

/**
 * A fetched record as an envelope, in one pass over its headers (this runs for every message).
 * Records written by foreign producers (no PlugMQ headers) still become envelopes, so core can
 * dead-letter what it cannot decode instead of stalling the partition. Only PlugMQ's wire
 * metadata is taken out of the headers; other `x-plugmq-*` headers (dead-letter, reply) stay.
 */
export function recordToEnvelope(
  record: FetchedRecord,
  type: string,
  topic: string,
  partition: number,
): Envelope {
  const wire = record.headers;
  const headers: Record<string, string> = {};
  let id: string | undefined;
  let wireType: string | undefined;
  let key: string | undefined = record.key;
  let contentType = '';
  let attempt = 1;
  let timestamp = record.timestamp;
  let priority: number | undefined;
  for (const name in wire) {
    const value = wire[name]!;
    switch (name) {
      case WIRE.id:
        id = value;
        break;
      case WIRE.contentType:
        contentType = value;
        break;
      case WIRE.type:
        wireType = value;
        break;
      case WIRE.attempt:
        attempt = wireAttempt(value);
        break;
      case WIRE.key:
        key = value;
        break;
      case WIRE.timestamp:
        timestamp = wireTimestamp(value) ?? timestamp;
        break;
      case WIRE.priority:
        priority = wirePriority(value);
        break;
      case DUE_HEADER:
        break;
      default:
        headers[name] = value;
    }
  }
  // One fixed object shape (no conditional spreads): this runs for every consumed message.
  return {
    id: id || `${topic}/${partition}/${record.offset}`,
    type: wireType || type,
    key,
    timestamp: Number.isFinite(timestamp) && timestamp > 0 ? timestamp : Date.now(),
    headers,
    contentType,
    body: record.value,
    attempt,
    priority,
  };
}
