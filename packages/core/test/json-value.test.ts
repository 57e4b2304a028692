import { describe, expect, it } from 'vitest';
import { jsonSnapshot, NOT_PLAIN } from '../src/json-value.js';
import { CodecRegistry, JSON_TEXT_CONTENT_TYPE, JSON_VALUE_CONTENT_TYPE, PlugmqError } from '../src/kit.js';

const codecs = new CodecRegistry();

/** What a handler receives from the in-process json-text mode, and how it travelled. */
function deliver(body: unknown): { contentType: string; body: unknown } {
  const encoded = codecs.encodeInProcess(body, 'json-text');
  return {
    contentType: encoded.contentType,
    body: codecs.decodeEnvelope({ ...encoded, body: encoded.bytes }),
  };
}

const sparse: unknown[] = [1];
sparse[3] = 'x';
const nullPrototype = Object.assign(Object.create(null), { a: 1, b: { c: [true] } });
const withHiddenProperties = Object.defineProperty({ shown: 1 }, 'hidden', { value: 2, enumerable: false });
const arrayWithExtra = Object.assign([1, 2], { extra: 'dropped by JSON' });

describe('in-process JSON bodies without the text', () => {
  it.each([
    ['a flat object', { sentAt: 1.5, payload: 'x'.repeat(200) }],
    ['nested values', { a: [1, 'two', null, { b: false }], c: { d: { e: [[]] } }, f: '' }],
    [
      '-0, NaN and Infinity',
      { zero: -0, nan: Number.NaN, inf: Number.POSITIVE_INFINITY, list: [-0, Number.NaN] },
    ],
    ['undefined properties and items', { gone: undefined, list: [undefined, 1], kept: null }],
    ['holes', sparse],
    ['integer-like keys', { b: 1, 2: 'two', a: 3, 1: 'one' }],
    ['a null-prototype object', nullPrototype],
    ['non-enumerable properties', withHiddenProperties],
    ['an array with a named property', arrayWithExtra],
    ['a string', 'text'],
    ['a number', 42],
    ['null', null],
    ['lone surrogates', { s: '\ud800x\udfff' }],
    [
      'symbol-keyed properties',
      { kept: 1, [Symbol('dropped')]: 2, nested: { [Symbol('dropped')]: { a: 1 } } },
    ],
  ])('%s arrive as JSON text would have parsed, without the text', (_name, body) => {
    const delivered = deliver(body);
    expect(delivered.contentType).toBe(JSON_VALUE_CONTENT_TYPE);
    const viaText = JSON.parse(JSON.stringify(body));
    expect(delivered.body).toStrictEqual(viaText);
    expect(Object.keys(delivered.body ?? {})).toEqual(Object.keys(viaText ?? {}));
  });

  it.each([
    ['a Date', { at: new Date(0) }],
    ['toJSON', { v: { toJSON: () => 'custom' } }],
    [
      'a class instance',
      {
        v: new (class Point {
          x = 1;
        })(),
      },
    ],
    ['a Map', { m: new Map([[1, 2]]) }],
    ['a boxed primitive', { n: Object(3) }],
    ['a __proto__ key', JSON.parse('{"__proto__": {"polluted": true}}')],
    ['a deep value', JSON.parse(`${'['.repeat(100)}1${']'.repeat(100)}`)],
  ])('%s falls back to JSON text and arrives the same', (_name, body) => {
    expect(jsonSnapshot(body)).toBe(NOT_PLAIN);
    const delivered = deliver(body);
    expect(delivered.contentType).toBe(JSON_TEXT_CONTENT_TYPE);
    expect(delivered.body).toStrictEqual(JSON.parse(JSON.stringify(body)));
  });

  it('the `__proto__` key arrives as an own property, never as a prototype', () => {
    const delivered = deliver(JSON.parse('{"__proto__": {"polluted": true}}')).body as object;
    expect(Object.getPrototypeOf(delivered)).toBe(Object.prototype);
    expect(Object.hasOwn(delivered, '__proto__')).toBe(true);
    expect((delivered as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('symbol-keyed properties stay out, at every level, as in JSON', () => {
    const body = { kept: 1, [Symbol('top')]: 2, nested: { [Symbol('inner')]: { a: 1 }, b: 2 } };
    const delivered = deliver(body).body as { nested: object };
    expect(Object.getOwnPropertySymbols(delivered)).toEqual([]);
    expect(Object.getOwnPropertySymbols(delivered.nested)).toEqual([]);
  });

  it('keys a polluted Object.prototype lends every object stay out, as in JSON', () => {
    const prototype = Object.prototype as Record<string, unknown>;
    prototype.inheritedObject = { a: 1 };
    prototype.inheritedNumber = Number.NaN;
    try {
      const body = { own: { nested: [1] }, n: -0 };
      const delivered = deliver(body).body as Record<string, unknown>;
      expect(Object.keys(delivered)).toEqual(['own', 'n']);
      expect(delivered).toStrictEqual(JSON.parse(JSON.stringify(body)));
    } finally {
      delete prototype.inheritedObject;
      delete prototype.inheritedNumber;
    }
  });

  it('each delivery is its own copy, and later changes to the published object are not seen', () => {
    const body = { list: [1, { n: 1 }], nested: { n: 1 } };
    const encoded = codecs.encodeInProcess(body, 'json-text');
    const envelope = { ...encoded, body: encoded.bytes };
    body.nested.n = 2;
    (body.list[1] as { n: number }).n = 2;
    const first = codecs.decodeEnvelope(envelope) as typeof body;
    first.nested.n = 3;
    first.list.push(9);
    expect(codecs.decodeEnvelope(envelope)).toStrictEqual({ list: [1, { n: 1 }], nested: { n: 1 } });
  });

  it.each([
    ['a BigInt', { n: 1n }, 'JSON-serialisable'],
    ['a function', { a: { f: () => 1 } }, 'body.a.f'],
    ['a symbol', { list: [Symbol('s')] }, 'body.list[0]'],
    [
      'a cycle',
      (() => {
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        return cyclic;
      })(),
      'JSON-serialisable',
    ],
    [
      'a throwing getter',
      Object.defineProperty({}, 'bad', {
        enumerable: true,
        get() {
          throw new Error('no');
        },
      }),
      'JSON-serialisable',
    ],
  ])('%s is INVALID_ARGUMENT as before', (_name, body, message) => {
    let caught: unknown;
    try {
      codecs.encodeInProcess(body, 'json-text');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PlugmqError);
    expect((caught as PlugmqError).code).toBe('INVALID_ARGUMENT');
    expect((caught as PlugmqError).message).toContain(message);
  });
});
