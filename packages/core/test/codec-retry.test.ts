import { describe, expect, it } from 'vitest';
import {
  CodecRegistry,
  DEFAULT_RETRY_POLICY,
  deadLetterEnvelope,
  type Envelope,
  envelopeFromWireHeaders,
  envelopeToWireHeaders,
  isExhausted,
  JSON_CONTENT_TYPE,
  RAW_CONTENT_TYPE,
  resolveRetryPolicy,
  retryDelayMs,
} from '../src/kit.js';

describe('codecs', () => {
  const codecs = new CodecRegistry();

  it.each([{ a: 1, b: [1, 'x', null] }, [1, 2], 'text', 3.5, null, true])('JSON round-trips %j', (body) => {
    const { contentType, bytes } = codecs.encode(body);
    expect(contentType).toBe(JSON_CONTENT_TYPE);
    expect(codecs.decode(contentType, bytes)).toEqual(body);
  });

  it('undefined travels as zero bytes and comes back undefined', () => {
    const { contentType, bytes } = codecs.encode(undefined);
    expect(bytes.byteLength).toBe(0);
    expect(codecs.decode(contentType, bytes)).toBeUndefined();
  });

  it('bytes travel raw and arrive as a Uint8Array', () => {
    const { contentType, bytes } = codecs.encode(Buffer.from([0, 255, 7]));
    expect(contentType).toBe(RAW_CONTENT_TYPE);
    const decoded = codecs.decode(contentType, bytes) as Uint8Array;
    expect(decoded).toBeInstanceOf(Uint8Array);
    expect([...decoded]).toEqual([0, 255, 7]);
  });

  it('bad bytes and unknown content types are DECODE_FAILED', () => {
    expect(() => codecs.decode(JSON_CONTENT_TYPE, Buffer.from('{nope'))).toThrowError(
      expect.objectContaining({ code: 'DECODE_FAILED' }),
    );
    expect(() => codecs.decode('application/x-unknown', Buffer.from('x'))).toThrowError(
      expect.objectContaining({ code: 'DECODE_FAILED' }),
    );
  });

  it('a foreign message without a content type is read as JSON', () => {
    expect(codecs.decode('', Buffer.from('{"a":1}'))).toEqual({ a: 1 });
  });
});

describe('retry back-off', () => {
  it('has the documented defaults', () => {
    expect(resolveRetryPolicy(undefined)).toEqual({ ...DEFAULT_RETRY_POLICY });
    expect(DEFAULT_RETRY_POLICY).toMatchObject({
      maxAttempts: 5,
      initialDelayMs: 1000,
      factor: 2,
      maxDelayMs: 60_000,
    });
  });

  it('is min(maxDelayMs, initialDelayMs × factor^(n−1))', () => {
    const policy = resolveRetryPolicy({ initialDelayMs: 100, factor: 3, maxDelayMs: 1000 });
    expect([1, 2, 3, 4].map((n) => retryDelayMs(policy, n))).toEqual([100, 300, 900, 1000]);
  });

  it('keeps jitter within ±20 % and under maxDelayMs', () => {
    const policy = resolveRetryPolicy({ initialDelayMs: 1000, jitter: true, maxDelayMs: 1100 });
    expect(retryDelayMs(policy, 1, () => 0)).toBe(800);
    expect(retryDelayMs(policy, 1, () => 1)).toBe(1100);
    expect(retryDelayMs(policy, 1, () => 0.5)).toBe(1000);
  });

  it('maxAttempts 1 means no retry', () => {
    expect(isExhausted(resolveRetryPolicy({ maxAttempts: 1 }), 1)).toBe(true);
    expect(isExhausted(resolveRetryPolicy({ maxAttempts: 3 }), 2)).toBe(false);
    expect(isExhausted(resolveRetryPolicy({ maxAttempts: 3 }), 3)).toBe(true);
  });
});

describe('dead-letter envelope and wire headers', () => {
  const original: Envelope = {
    id: 'id-1',
    type: 'orders.created',
    key: 'customer-7',
    timestamp: 1_700_000_000_000,
    headers: { tenant: 'eu' },
    contentType: JSON_CONTENT_TYPE,
    body: Buffer.from('{"a":1}'),
    attempt: 3,
  };

  it('keeps id, key, body and headers, adds the three x-plugmq headers, restarts at attempt 1', () => {
    const dead = deadLetterEnvelope(original, 'orders.created.dlq', 'Error: boom');
    expect(dead).toMatchObject({ id: 'id-1', type: 'orders.created.dlq', key: 'customer-7', attempt: 1 });
    expect(dead.body).toBe(original.body);
    expect(dead.headers).toEqual({
      tenant: 'eu',
      'x-plugmq-error': 'Error: boom',
      'x-plugmq-original-type': 'orders.created',
      'x-plugmq-attempts': '3',
    });
  });

  it('wire headers round-trip an envelope and keep application headers apart', () => {
    const wire = envelopeToWireHeaders(original);
    const back = envelopeFromWireHeaders(wire, original.body, { type: 'x', id: 'y' });
    expect(back).toEqual({ ...original });
  });

  it('a foreign message gets safe defaults', () => {
    const back = envelopeFromWireHeaders({}, Buffer.from('raw'), { type: 'orders', id: '0-1', timestamp: 5 });
    expect(back).toMatchObject({
      id: '0-1',
      type: 'orders',
      attempt: 1,
      timestamp: 5,
      contentType: '',
      headers: {},
    });
  });
});
