import type { ErrorCode, Handler, HandlerContext, Logger, Message } from '@plugmq/core';
import { expect } from 'vitest';

/**
 * Small helpers the conformance suite uses, exported for adapter authors' driver-specific tests.
 * Every wait here is bounded: a helper that waits takes a timeout and fails the test when it passes.
 */

let sequence = 0;

/** A name unique to this process run, valid as a message type or group: `[A-Za-z0-9._-]`. */
export function uniqueName(prefix = 'plugmq'): string {
  sequence++;
  const random = Math.random().toString(36).slice(2, 8);
  return `${prefix}.${Date.now().toString(36)}-${sequence.toString(36)}-${random}`;
}

/** A message type no other test uses, so tests can share one broker. */
export function uniqueType(prefix = 'conformance'): string {
  return uniqueName(prefix);
}

/** A group name no other test uses. */
export function uniqueGroup(prefix = 'group'): string {
  return uniqueName(prefix);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` until it holds; throws when `timeoutMs` passes first. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(`waitFor: ${what} did not hold within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** Races `promise` against a timer; rejects with a message naming `what` when the timer wins. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
  readonly settled: boolean;
}

/** A promise with its resolve/reject exposed: gates that hold handlers until the test releases them. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    promise,
    resolve: (value) => {
      settled = true;
      resolve(value);
    },
    reject: (error) => {
      settled = true;
      reject(error);
    },
    get settled() {
      return settled;
    },
  };
}

export interface Collector<T = unknown> {
  /** Every delivery, in arrival order (a redelivery appears again). */
  readonly messages: Message<T>[];
  /** `Date.now()` of each delivery, parallel to `messages`. */
  readonly arrivedAt: number[];
  /** Pass this to `consume`. Records the message, then runs `onMessage` (which may throw to nack). */
  readonly handler: Handler<T>;
  bodies(): T[];
  ids(): string[];
  /** Ids delivered more than once. */
  duplicates(): string[];
  /** Resolves once at least `count` deliveries arrived; rejects after `timeoutMs`. */
  waitForCount(count: number, timeoutMs: number): Promise<Message<T>[]>;
  /** Waits `quietMs` and asserts that no more than `count` deliveries arrived by then. */
  expectNoMore(count: number, quietMs: number): Promise<void>;
}

/** Gathers delivered messages and lets a test await N of them with a bounded timeout. */
export function collector<T = unknown>(
  onMessage?: (message: Message<T>, context: HandlerContext) => void | Promise<void>,
): Collector<T> {
  const messages: Message<T>[] = [];
  const arrivedAt: number[] = [];
  return {
    messages,
    arrivedAt,
    handler: async (message, context) => {
      messages.push(message);
      arrivedAt.push(Date.now());
      if (onMessage) await onMessage(message, context);
    },
    bodies: () => messages.map((message) => message.body),
    ids: () => messages.map((message) => message.id),
    duplicates: () => {
      const seen = new Set<string>();
      const twice = new Set<string>();
      for (const message of messages) {
        if (seen.has(message.id)) twice.add(message.id);
        seen.add(message.id);
      }
      return [...twice];
    },
    async waitForCount(count, timeoutMs) {
      try {
        await waitFor(() => messages.length >= count, timeoutMs, `${count} deliveries`);
      } catch {
        throw new Error(
          `expected ${count} deliveries within ${timeoutMs} ms, got ${messages.length}: ${JSON.stringify(
            messages.map((message) => message.body),
          ).slice(0, 500)}`,
        );
      }
      return messages.slice();
    },
    async expectNoMore(count, quietMs) {
      await sleep(quietMs);
      expect(messages.length, 'deliveries after a quiet period').toBeLessThanOrEqual(count);
    },
  };
}

/** Counts handlers running at once. */
export interface ConcurrencyProbe {
  readonly active: number;
  readonly max: number;
  /** Wraps a handler body: counts it as running while `work` runs. */
  run<R>(work: () => Promise<R>): Promise<R>;
}

export function concurrencyProbe(): ConcurrencyProbe {
  let active = 0;
  let max = 0;
  return {
    get active() {
      return active;
    },
    get max() {
      return max;
    },
    async run(work) {
      active++;
      max = Math.max(max, active);
      try {
        return await work();
      } finally {
        active--;
      }
    },
  };
}

/** A PlugmqError as seen across package copies: an Error with one of the contract's codes. */
export type CodedError = Error & { code: string };

/**
 * Runs `action` and expects it to fail with a PlugmqError of `code` (or one of `code`), whose
 * message contains `mentions` when given. A synchronous throw is accepted too; the suite checks
 * separately that the public methods reject rather than throw.
 */
export async function expectPlugmqError(
  action: () => unknown,
  code: ErrorCode | readonly ErrorCode[],
  mentions?: string,
): Promise<CodedError> {
  let error: unknown;
  let resolvedWith: unknown;
  let failed = false;
  try {
    resolvedWith = await action();
  } catch (caught) {
    failed = true;
    error = caught;
  }
  if (!failed) {
    throw new Error(
      `expected a PlugmqError ${String(code)}, but the call resolved with ${String(resolvedWith)}`,
    );
  }
  expect(error, 'the failure is an Error').toBeInstanceOf(Error);
  const codes: readonly string[] = typeof code === 'string' ? [code] : code;
  const actual = (error as { code?: unknown }).code;
  expect(codes, `error code (message: ${(error as Error).message})`).toContain(actual);
  if (mentions !== undefined) expect((error as Error).message).toContain(mentions);
  return error as CodedError;
}

/** Expects `action` to return a promise that rejects (not to throw synchronously); returns the error. */
export async function expectRejection(action: () => unknown, what: string): Promise<unknown> {
  let returned: unknown;
  try {
    returned = action();
  } catch (error) {
    throw new Error(`${what} threw synchronously instead of returning a rejected promise: ${String(error)}`);
  }
  expect(returned, `${what} returns a promise`).toBeInstanceOf(Promise);
  try {
    await returned;
  } catch (error) {
    return error;
  }
  throw new Error(`${what} resolved; expected it to reject`);
}

export interface LogEntry {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

export interface RecordingLogger extends Logger {
  readonly entries: LogEntry[];
  /** Entries of `level` whose fields or message, as text, contain every one of `needles`. */
  find(level: LogEntry['level'], ...needles: string[]): LogEntry[];
}

/** A pino-compatible logger that keeps every entry, to pass as `logger` in a manager's config. */
export function recordingLogger(
  entries: LogEntry[] = [],
  bindings: Record<string, unknown> = {},
): RecordingLogger {
  const at =
    (level: LogEntry['level']) =>
    (fieldsOrMessage: Record<string, unknown> | string, message?: string): void => {
      if (typeof fieldsOrMessage === 'string')
        entries.push({ level, fields: { ...bindings }, message: fieldsOrMessage });
      else entries.push({ level, fields: { ...bindings, ...fieldsOrMessage }, message: message ?? '' });
    };
  const text = (entry: LogEntry): string => {
    try {
      return `${JSON.stringify(entry.fields)} ${entry.message}`;
    } catch {
      return `${String(Object.values(entry.fields))} ${entry.message}`;
    }
  };
  return {
    entries,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => recordingLogger(entries, { ...bindings, ...more }),
    find: (level, ...needles) =>
      entries.filter(
        (entry) => entry.level === level && needles.every((needle) => text(entry).includes(needle)),
      ),
  };
}
