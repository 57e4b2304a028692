import { assertMessageType, isPlugmqError } from '@plugmq/core/driver';
import { InvalidArgumentError } from 'commander';

/** Argument parsers for commander: a bad value becomes a usage error (exit code 2). */
export function positiveInt(name: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1)
      throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return value;
  };
}

export function nonNegativeInt(name: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0)
      throw new InvalidArgumentError(`${name} must be an integer >= 0.`);
    return value;
  };
}

export function intRange(name: string, min: number, max: number) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
    return value;
  };
}

/** A message type, checked before connecting: letters, digits, `.`, `_`, `-`, at most 200. */
export function messageType(raw: string): string {
  try {
    assertMessageType(raw);
  } catch (error) {
    if (isPlugmqError(error)) {
      throw new InvalidArgumentError(
        'a message type is letters, digits, ".", "_" or "-", at most 200 characters.',
      );
    }
    throw error;
  }
  return raw;
}

export function port(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new InvalidArgumentError('port must be an integer from 0 to 65535.');
  }
  return value;
}

/** `name=value`, repeatable: collects into a record. */
export function header(raw: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = raw.indexOf('=');
  if (at < 1) throw new InvalidArgumentError(`header must look like name=value (got "${raw}").`);
  return { ...previous, [raw.slice(0, at)]: raw.slice(at + 1) };
}

export function intList(name: string) {
  return (raw: string): number[] => {
    const values = raw.split(',').map(Number);
    if (values.some((v) => !Number.isInteger(v) || v < 1)) {
      throw new InvalidArgumentError(`${name} must be a comma-separated list of positive integers.`);
    }
    return values;
  };
}

/** A body given on the command line: JSON when it parses, else the text itself. */
export function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
