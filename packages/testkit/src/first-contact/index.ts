import { describe } from 'vitest';
import { connectScenarios } from './connect.js';
import { lifecycleScenarios } from './lifecycle.js';
import type { FirstContactOptions } from './options.js';

export { type ChildRun, connectInChild } from './child.js';
export type { ConnectFailureOptions, FirstContactOptions } from './options.js';

/**
 * What a new user meets first, on one driver (issue 16): a normal life cycle that logs no
 * warnings and counts answered requests as acked, and first connects that fail fast and say why.
 * Call at the top level of a test file, after registering the driver.
 */
export function runFirstContact(options: FirstContactOptions): void {
  const ms = (value: number) => Math.round(value * (options.timeScale ?? 1));
  describe(`plugmq first contact: ${options.name}`, () => {
    describe('a normal life cycle', () => lifecycleScenarios(options, ms));
    const connect = options.connect;
    if (connect) describe('a first connect that fails', () => connectScenarios(connect, ms));
  });
}
