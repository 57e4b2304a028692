import { inspect } from 'node:util';

/**
 * Holds a credential-bearing option (SASL, TLS keys) so it never shows: `util.inspect`,
 * `console.log` and `JSON.stringify` of the validated config (which core keeps) print
 * `[redacted]`. Only the client seam calls `reveal()`.
 */
export class Secret<T> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}
