import { type Envelope, envelopeFromWireHeaders, WIRE } from '@plugmq/core';
import type { FetchedRecord, OutgoingRecord } from './client.js';

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
  return {
    topic,
    ...(envelope.key === undefined ? {} : { key: envelope.key }),
    ...(partition === undefined ? {} : { partition }),
    timestamp: envelope.timestamp,
    value: envelope.body,
    headers,
  };
}

/**
 * A fetched record as an envelope. Records written by foreign producers (no PlugMQ headers) still
 * become envelopes, so core can dead-letter what it cannot decode instead of stalling the partition.
 */
export function recordToEnvelope(
  record: FetchedRecord,
  type: string,
  topic: string,
  partition: number,
): Envelope {
  let headers = record.headers;
  if (headers[DUE_HEADER] !== undefined) {
    const { [DUE_HEADER]: _due, ...rest } = headers;
    headers = rest;
  }
  const envelope = envelopeFromWireHeaders(headers, record.value, {
    type,
    id: `${topic}/${partition}/${record.offset}`,
    timestamp: record.timestamp,
  });
  // The Kafka key is authoritative (a foreign producer sets no x-plugmq-key header).
  if (envelope.key === undefined && record.key !== undefined) return { ...envelope, key: record.key };
  return envelope;
}
