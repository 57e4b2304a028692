import { expect } from 'vitest';
import { type Capabilities, type ErrorCode, PlugmqError } from '../src/index.js';

/** Capabilities for a test driver: persistent, delay and priority, nothing else. */
export const testCapabilities: Capabilities = {
  persistent: true,
  orderedByKey: false,
  delay: true,
  priority: true,
  newGroupReceivesOldMessages: false,
  requestReply: false,
};

/** Asserts a PlugmqError with `code` whose message names `field` (what the user must fix). */
export async function expectPlugmqError(
  action: () => unknown,
  code: ErrorCode,
  field: string | RegExp,
): Promise<PlugmqError> {
  let caught: unknown;
  try {
    await action();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a PlugmqError to be thrown').toBeInstanceOf(PlugmqError);
  const error = caught as PlugmqError;
  expect(error.code).toBe(code);
  if (typeof field === 'string') expect(error.message).toContain(field);
  else expect(error.message).toMatch(field);
  return error;
}
