import {
  type Envelope,
  envelopeFromWireHeaders,
  envelopeToWireHeaders,
  type OutgoingEnvelope,
} from '@plugmq/core/driver';

/** A claimed row of the deliveries table. */
export interface DeliveryRow {
  seq: string;
  type: string;
  priority: number;
  attempt: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Metadata and application headers travel as one jsonb object of core's wire headers, so a row
 * written by another tool (missing some) still decodes; the attempt lives in its own column
 * because retry bumps it in place.
 */
export function headersJson(envelope: OutgoingEnvelope): string {
  return JSON.stringify(envelopeToWireHeaders(envelope));
}

export function bodyBytes(envelope: OutgoingEnvelope): Buffer {
  return Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength);
}

export function envelopeFromRow(row: DeliveryRow): Envelope {
  const envelope = envelopeFromWireHeaders(row.headers ?? {}, row.body, { type: row.type, id: row.seq });
  return { ...envelope, attempt: row.attempt };
}
