import {
  type Envelope,
  envelopeFromWireHeaders,
  envelopeToWireHeaders,
  RAW_CONTENT_TYPE,
} from '@plugmq/core';

/**
 * A stream entry is a flat list of field/value pairs: PlugMQ's `x-plugmq-*` metadata and the
 * application headers (string values), plus the body bytes under BODY_FIELD. Names starting with
 * `x-plugmq-` are reserved, so an application header never collides with the body.
 */
export const BODY_FIELD = 'x-plugmq-body';

export type FieldValue = string | Buffer;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The XADD arguments after the id: name, value, name, value, … with the body last. */
export function envelopeToFields(envelope: Envelope): FieldValue[] {
  const wire = envelopeToWireHeaders(envelope);
  // The dead-letter copy of a malformed entry is stored as raw bytes (its fields travel as
  // headers), so consumers of the dead-letter type can read it instead of bouncing it again.
  if (envelope.contentType === MALFORMED_CONTENT_TYPE) wire[CONTENT_TYPE_FIELD] = RAW_CONTENT_TYPE;
  const fields: FieldValue[] = [];
  for (const name in wire) fields.push(name, wire[name] as string);
  fields.push(BODY_FIELD, asBuffer(envelope.body));
  return fields;
}

const EMPTY = Buffer.alloc(0);

/**
 * Content type given to an entry that lacks PlugMQ's body or content-type field (written by a
 * foreign producer, or damaged): no codec has it, so core dead-letters the entry with
 * DECODE_FAILED, its fields kept as headers, instead of handing the handler an empty body.
 */
export const MALFORMED_CONTENT_TYPE = 'application/x-plugmq-malformed-entry';
const CONTENT_TYPE_FIELD = 'x-plugmq-content-type';

/**
 * Rebuilds an envelope from an entry read with a Buffer reply. An entry written by a foreign
 * producer (no PlugMQ fields, no body) still becomes an envelope: core dead-letters what it
 * cannot decode (DECODE_FAILED), so a malformed entry never stops the consumer.
 */
export function envelopeFromFields(
  raw: readonly Buffer[] | null | undefined,
  fallback: { type: string; id: string },
): Envelope {
  const wire: Record<string, string> = {};
  let body: Buffer | undefined;
  if (raw) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString();
      const value = raw[i + 1] as Buffer;
      if (name === BODY_FIELD) body = value;
      else wire[name] = value.toString();
    }
  }
  if (body === undefined || wire[CONTENT_TYPE_FIELD] === undefined)
    wire[CONTENT_TYPE_FIELD] = MALFORMED_CONTENT_TYPE;
  return envelopeFromWireHeaders(wire, body ?? EMPTY, { ...fallback, timestamp: timestampOfId(fallback.id) });
}

/** The ms part of a stream entry id `<ms>-<seq>`: when Redis stored the entry. */
export function timestampOfId(id: string): number | undefined {
  const ms = Number(id.slice(0, id.indexOf('-')));
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** Length-prefixed frame of fields (request/reply lists hold one binary string per reply). */
export function fieldsToFrame(fields: readonly FieldValue[]): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(fields.length);
  parts.push(count);
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field) : field;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

export function frameToFields(frame: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  if (frame.length < 4) return fields;
  const count = frame.readUInt32BE(0);
  let offset = 4;
  for (let i = 0; i < count && offset + 4 <= frame.length; i++) {
    const length = frame.readUInt32BE(offset);
    offset += 4;
    fields.push(frame.subarray(offset, offset + length));
    offset += length;
  }
  return fields;
}
