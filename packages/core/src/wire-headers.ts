import type { Envelope } from './transport.js';

/**
 * One string map for brokers whose messages carry only string headers (Redis fields, Kafka
 * headers). Envelope metadata travels under `x-plugmq-*` names beside the application headers.
 */
export const WIRE = {
  id: 'x-plugmq-id',
  type: 'x-plugmq-type',
  key: 'x-plugmq-key',
  timestamp: 'x-plugmq-timestamp',
  contentType: 'x-plugmq-content-type',
  attempt: 'x-plugmq-attempt',
  priority: 'x-plugmq-priority',
} as const;

const WIRE_NAMES: ReadonlySet<string> = new Set(Object.values(WIRE));

/*
 * The rules for reading PlugMQ's metadata back, whatever the broker's header format: each
 * adapter's decoder walks its own headers (that walk is per broker and on the hot path) and reads
 * each value through these, so a foreign or damaged value means the same on every driver.
 */

/** `x-plugmq-attempt`: a positive integer (number or text); anything else is attempt 1. */
export function wireAttempt(value: unknown): number {
  const number = typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) && number > 0 ? number : 1;
}

/** `x-plugmq-priority`: an integer (number or text), else no priority. */
export function wirePriority(value: unknown): number | undefined {
  const number = typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) ? number : undefined;
}

/** `x-plugmq-timestamp` (epoch ms): a positive finite number (or text), else undefined. */
export function wireTimestamp(value: unknown): number | undefined {
  const number = typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isFinite(number) && number > 0 ? number : undefined;
}

export function envelopeToWireHeaders(envelope: Envelope): Record<string, string> {
  const wire: Record<string, string> = { ...envelope.headers };
  wire[WIRE.id] = envelope.id;
  wire[WIRE.type] = envelope.type;
  if (envelope.key !== undefined) wire[WIRE.key] = envelope.key;
  wire[WIRE.timestamp] = String(envelope.timestamp);
  wire[WIRE.contentType] = envelope.contentType;
  wire[WIRE.attempt] = String(envelope.attempt);
  if (envelope.priority !== undefined) wire[WIRE.priority] = String(envelope.priority);
  return wire;
}

/**
 * Rebuilds an envelope from wire headers and body. Missing metadata (a message written by a
 * foreign producer) gets safe defaults so it can still be handled or dead-lettered.
 */
export function envelopeFromWireHeaders(
  wire: Readonly<Record<string, string | undefined>>,
  body: Uint8Array,
  fallback: { type: string; id: string; timestamp?: number },
): Envelope {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(wire)) {
    if (value !== undefined && !WIRE_NAMES.has(name)) headers[name] = value;
  }
  const priority = wirePriority(wire[WIRE.priority]);
  const key = wire[WIRE.key];
  return {
    id: wire[WIRE.id] || fallback.id,
    type: wire[WIRE.type] || fallback.type,
    ...(key === undefined ? {} : { key }),
    timestamp: wireTimestamp(wire[WIRE.timestamp]) ?? fallback.timestamp ?? Date.now(),
    headers,
    contentType: wire[WIRE.contentType] ?? '',
    body,
    attempt: wireAttempt(wire[WIRE.attempt]),
    ...(priority === undefined ? {} : { priority }),
  };
}
