import { describe, expect, it } from 'vitest';
import {
  isPlugmqError,
  parseUrlList,
  tlsOption,
  wireAttempt,
  wirePriority,
  wireTimestamp,
} from '../src/kit.js';

const AMQP = ['amqp:', 'amqps:'] as const;

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('parseUrlList (the URL lists of every driver)', () => {
  it('splits a host list sharing scheme, credentials, path and query', () => {
    expect(parseUrlList('amqp://u:p@a:1,b:2/vh?x=1', AMQP)).toEqual([
      'amqp://u:p@a:1/vh?x=1',
      'amqp://u:p@b:2/vh?x=1',
    ]);
  });

  it('keeps independent URLs as they are, and one URL as one', () => {
    expect(parseUrlList('amqp://a:1, amqps://b:2', AMQP)).toEqual(['amqp://a:1', 'amqps://b:2']);
    expect(parseUrlList('amqp://a:1', AMQP)).toEqual(['amqp://a:1']);
  });

  it('refuses a wrong scheme or a non-string with CONFIG_INVALID naming the field, never the password', () => {
    const wrong = errorOf(() => parseUrlList('redis://u:s3cret@a:1,b:2', AMQP, 'urls[1]'));
    expect(isPlugmqError(wrong, 'CONFIG_INVALID')).toBe(true);
    expect(wrong.message).toMatch(/^urls\[1\] must use amqp: or amqps:/);
    expect(wrong.message).not.toContain('s3cret');
    expect(
      isPlugmqError(
        errorOf(() => parseUrlList(42, AMQP)),
        'CONFIG_INVALID',
      ),
    ).toBe(true);
  });
});

describe('tlsOption', () => {
  it('passes an object through, leaves undefined unset, refuses anything else', () => {
    expect(tlsOption({ driver: 'x', tls: { servername: 'a' } })).toEqual({ servername: 'a' });
    expect(tlsOption({ driver: 'x' })).toBeUndefined();
    for (const tls of [true, 'ca.pem', [], null]) {
      const error = errorOf(() => tlsOption({ driver: 'x', tls }));
      expect(isPlugmqError(error, 'CONFIG_INVALID')).toBe(true);
      expect(error.message).toMatch(/^tls /);
    }
  });
});

describe('wire metadata rules (one reading for every broker)', () => {
  it('attempt: a positive integer as number or text, else 1', () => {
    expect([3, '3', 0, '-1', '2.5', 'x', undefined, null].map(wireAttempt)).toEqual([3, 3, 1, 1, 1, 1, 1, 1]);
  });

  it('priority: an integer, else none', () => {
    expect([5, '0', '-2', '1.5', 'x', undefined].map(wirePriority)).toEqual([
      5,
      0,
      -2,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('timestamp: a positive finite number, else none', () => {
    expect(
      [1700000000000, '1700000000000', 0, '-5', 'soon', Number.POSITIVE_INFINITY].map(wireTimestamp),
    ).toEqual([1700000000000, 1700000000000, undefined, undefined, undefined, undefined]);
  });
});
