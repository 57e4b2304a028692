/**
 * JSON semantics without the text, for in-process transports. `JSON.parse(JSON.stringify(body))`
 * costs ~1 µs for a 256-byte body, most of a memory-driver message; a walk that copies plain
 * objects, arrays and primitives the way that round trip would costs about a tenth of it. Anything
 * the walk does not handle exactly as JSON would (toJSON, class instances, BigInt, functions,
 * symbols, very deep or cyclic values, a `__proto__` key) makes it give up, and the caller falls
 * back to the JSON text, which keeps the one set of rules and error messages.
 */

/** What `jsonSnapshot` returns when it cannot vouch for the result: use JSON text instead. */
export const NOT_PLAIN: unique symbol = Symbol('plugmq.notPlainJson');

/**
 * Deeper than this is given up on: cycles end here (JSON text names them) and no stack is at
 * risk. Real message bodies are a handful of levels deep.
 */
const MAX_DEPTH = 64;

/**
 * The value `JSON.parse(JSON.stringify(value))` would give, sharing nothing mutable with `value`,
 * or NOT_PLAIN. Strings are shared: they are immutable. `value` must not be undefined.
 */
export function jsonSnapshot(value: unknown, depth = 0): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // JSON writes -0 as 0 and NaN and ±Infinity as null.
      return Number.isFinite(value) ? (value === 0 ? 0 : value) : null;
    case 'object':
      if (value === null) return null;
      if (depth >= MAX_DEPTH) return NOT_PLAIN;
      return Array.isArray(value) ? arraySnapshot(value, depth) : objectSnapshot(value, depth);
    default:
      return NOT_PLAIN;
  }
}

function arraySnapshot(array: unknown[], depth: number): unknown {
  if (
    Object.getPrototypeOf(array) !== Array.prototype ||
    typeof (array as { toJSON?: unknown }).toJSON === 'function'
  ) {
    return NOT_PLAIN;
  }
  const length = array.length;
  const copy = new Array<unknown>(length);
  for (let index = 0; index < length; index++) {
    const item = array[index];
    // JSON writes undefined items and holes as null.
    const inner = item === undefined ? null : jsonSnapshot(item, depth + 1);
    if (inner === NOT_PLAIN) return NOT_PLAIN;
    copy[index] = inner;
  }
  return copy;
}

function objectSnapshot(object: object, depth: number): unknown {
  const prototype = Object.getPrototypeOf(object);
  if (
    (prototype !== Object.prototype && prototype !== null) ||
    typeof (object as { toJSON?: unknown }).toJSON === 'function'
  ) {
    return NOT_PLAIN;
  }
  const copy: Record<string, unknown> = {};
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    const item = (object as Record<string, unknown>)[key];
    // JSON leaves undefined properties out.
    if (item === undefined) continue;
    // JSON.parse makes `__proto__` an own property; an assignment would set the prototype.
    if (key === '__proto__') return NOT_PLAIN;
    const inner = jsonSnapshot(item, depth + 1);
    if (inner === NOT_PLAIN) return NOT_PLAIN;
    copy[key] = inner;
  }
  return copy;
}

/**
 * A fresh copy of a `jsonSnapshot` result for one delivery, so that a handler changing its body
 * changes no other delivery's. The snapshot holds only plain objects, arrays and primitives.
 */
export function copyJsonValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const length = value.length;
    const copy = new Array<unknown>(length);
    for (let index = 0; index < length; index++) copy[index] = copyJsonValue(value[index]);
    return copy;
  }
  const copy: Record<string, unknown> = {};
  for (const key in value) {
    if (Object.hasOwn(value, key)) copy[key] = copyJsonValue((value as Record<string, unknown>)[key]);
  }
  return copy;
}
