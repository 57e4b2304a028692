/** Every failure PlugMQ reports carries one of these codes; `cause` holds the underlying error. */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'CONFIG_INVALID',
  'DRIVER_NOT_FOUND',
  'UNSUPPORTED',
  'CLOSED',
  'TIMEOUT',
  'PUBLISH_FAILED',
  'CONNECTION',
  'DECODE_FAILED',
  /** A delivery whose body fails its catalog schema: dead-lettered at once, never handled. */
  'INVALID_MESSAGE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const BRAND = Symbol.for('plugmq.PlugmqError');

export class PlugmqError extends Error {
  readonly code: ErrorCode;

  /**
   * `instanceof` holds across copies of this package (its ESM and CJS builds loaded side by side,
   * or two installed versions): the check is by a global brand, not by class identity.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PlugmqError';
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  override toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }
}

export function isPlugmqError(error: unknown, code?: ErrorCode): error is PlugmqError {
  return error instanceof PlugmqError && (code === undefined || error.code === code);
}

/** A short, single-line description of any thrown value, for logs and dead-letter headers. */
export function describeError(error: unknown): string {
  if (error instanceof PlugmqError) return `${error.code}: ${error.message}`;
  // A wrapper by nature: the dead-letter header names what it wraps.
  if (error instanceof UnrecoverableError && error.cause !== undefined) {
    return `${error.name}: ${error.message}; cause: ${describeError(error.cause)}`;
  }
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

const UNRECOVERABLE_BRAND = Symbol.for('plugmq.UnrecoverableError');

/**
 * Thrown by a handler to say "this message will never succeed": the message skips the remaining
 * attempts and goes to the dead-letter type at once (or is dropped with `deadLetter: false`),
 * counted as dead-lettered, not as retried. `cause` keeps the underlying error.
 */
export class UnrecoverableError extends Error {
  /** Branded like PlugmqError, so `instanceof` holds across copies of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[UNRECOVERABLE_BRAND] === true
    );
  }

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UnrecoverableError';
    Object.defineProperty(this, UNRECOVERABLE_BRAND, { value: true });
  }
}
