import { PlugmqError } from './errors.js';
import type { ConsumeOptions, PublishOptions, RetryOptions } from './types.js';

const TYPE_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;
/** Types seen valid before: the hot publish path skips the regex for them. Bounded so it cannot grow forever. */
const knownValidTypes = new Set<string>();
const KNOWN_TYPES_LIMIT = 10_000;

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}

export function invalidArgument(field: string, allowed: string, value: unknown): PlugmqError {
  return new PlugmqError('INVALID_ARGUMENT', `${field} must be ${allowed} (got ${describeValue(value)})`);
}

/** A message type is a non-empty string of [A-Za-z0-9._-], at most 200 characters. */
export function assertMessageType(type: unknown, field = 'type'): asserts type is string {
  if (typeof type === 'string' && knownValidTypes.has(type)) return;
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw invalidArgument(field, 'a non-empty string of [A-Za-z0-9._-], at most 200 characters', type);
  }
  if (knownValidTypes.size >= KNOWN_TYPES_LIMIT) knownValidTypes.clear();
  knownValidTypes.add(type);
}

export function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

function assertPositiveInteger(value: unknown, field: string): void {
  if (!isInteger(value) || value < 1) throw invalidArgument(field, 'a positive integer', value);
}

function assertPositiveNumber(value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidArgument(field, 'a positive number', value);
  }
}

function assertStringRecord(value: unknown, field: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(field, 'an object of string values', value);
  }
  for (const [name, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalidArgument(`${field}.${name}`, 'a string', v);
  }
}

export function validatePublishOptions(options: PublishOptions | undefined, field = 'options'): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw invalidArgument(field, 'an object', options);
  const { id, key, headers, delayMs, priority, mandatory, signal } = options;
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 256)) {
    throw invalidArgument(`${field}.id`, 'a non-empty string of at most 256 characters', id);
  }
  if (key !== undefined && (typeof key !== 'string' || key.length > 1024)) {
    throw invalidArgument(`${field}.key`, 'a string of at most 1024 characters', key);
  }
  if (headers !== undefined) assertStringRecord(headers, `${field}.headers`);
  if (delayMs !== undefined && (!isInteger(delayMs) || delayMs < 0)) {
    throw invalidArgument(`${field}.delayMs`, 'an integer >= 0', delayMs);
  }
  if (priority !== undefined && (!isInteger(priority) || priority < 0 || priority > 9)) {
    throw invalidArgument(`${field}.priority`, 'an integer from 0 to 9', priority);
  }
  if (mandatory !== undefined && typeof mandatory !== 'boolean') {
    throw invalidArgument(`${field}.mandatory`, 'a boolean', mandatory);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArgument(`${field}.signal`, 'an AbortSignal', signal);
  }
}

export function validateRetryOptions(retry: RetryOptions | undefined, field = 'retry'): void {
  if (retry === undefined) return;
  if (typeof retry !== 'object' || retry === null) throw invalidArgument(field, 'an object', retry);
  if (retry.maxAttempts !== undefined) assertPositiveInteger(retry.maxAttempts, `${field}.maxAttempts`);
  if (retry.initialDelayMs !== undefined)
    assertPositiveInteger(retry.initialDelayMs, `${field}.initialDelayMs`);
  if (retry.maxDelayMs !== undefined) assertPositiveInteger(retry.maxDelayMs, `${field}.maxDelayMs`);
  if (retry.factor !== undefined) assertPositiveNumber(retry.factor, `${field}.factor`);
  if (retry.jitter !== undefined && typeof retry.jitter !== 'boolean') {
    throw invalidArgument(`${field}.jitter`, 'a boolean', retry.jitter);
  }
  if (retry.shouldRetry !== undefined && typeof retry.shouldRetry !== 'function') {
    throw invalidArgument(
      `${field}.shouldRetry`,
      'a function (error, message) => boolean',
      retry.shouldRetry,
    );
  }
}

/** Validates consume() arguments and returns the type list. */
export function validateConsumeArguments(
  types: unknown,
  handler: unknown,
  options: ConsumeOptions | undefined,
): string[] {
  const list = typeof types === 'string' ? [types] : types;
  if (!Array.isArray(list) || list.length === 0) {
    throw invalidArgument('types', 'a message type or a non-empty array of message types', types);
  }
  for (const [index, type] of list.entries()) {
    assertMessageType(type, Array.isArray(types) ? `types[${index}]` : 'types');
  }
  if (typeof handler !== 'function') throw invalidArgument('handler', 'a function', handler);
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument(
      'options.group',
      'a non-empty string (consume needs options with a group)',
      options,
    );
  }
  const { group, concurrency, retry, deadLetter, startFrom, signal } = options;
  if (typeof group !== 'string' || group.length === 0) {
    throw invalidArgument('options.group', 'a non-empty string', group);
  }
  assertMessageType(group, 'options.group');
  if (concurrency !== undefined) assertPositiveInteger(concurrency, 'options.concurrency');
  validateRetryOptions(retry, 'options.retry');
  if (deadLetter !== undefined && deadLetter !== false) assertMessageType(deadLetter, 'options.deadLetter');
  if (startFrom !== undefined && startFrom !== 'latest' && startFrom !== 'earliest') {
    throw invalidArgument('options.startFrom', "'latest' or 'earliest'", startFrom);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArgument('options.signal', 'an AbortSignal', signal);
  }
  return [...new Set(list as string[])];
}

export function validateTimeout(value: unknown, field: string): void {
  if (value !== undefined) assertPositiveInteger(value, field);
}
