import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import { backpressureScenarios } from './backpressure.js';
import { batchScenarios } from './batch.js';
import { catalogScenarios } from './catalog.js';
import { closeScenarios } from './close.js';
import { codecScenarios } from './codec.js';
import { concurrencyScenarios } from './concurrency.js';
import { deliveryScenarios } from './delivery.js';
import { ConformanceEnv, type ConformanceOptions } from './env.js';
import { featureScenarios } from './features.js';
import { handlerControlScenarios } from './handler-control.js';
import { inspectionScenarios } from './inspection.js';
import { requestReplyScenarios } from './request-reply.js';
import { retryScenarios } from './retry.js';
import { validationScenarios } from './validation.js';

export type { CapabilityName, ConformanceOptions } from './env.js';
export { ConformanceEnv } from './env.js';
export * from './helpers.js';
export { type JoinMidStreamOptions, joinMidStream } from './join-mid-stream.js';

/**
 * Registers the PlugMQ conformance suite (vitest describe/it blocks) for one driver. Call it at
 * the top level of a test file:
 *
 *   runConformance({ name: 'memory', create: (overrides) => createQueueManager({ driver: 'memory', ...overrides }) });
 *
 * Every scenario uses its own message types and groups, so all of them can share one broker, and
 * closes every manager it opened. Scenarios that need a capability the driver reports false are
 * skipped (the test name says which capability); the refusal of such a feature (UNSUPPORTED) is
 * tested instead.
 */
export function runConformance(options: ConformanceOptions): void {
  const env = new ConformanceEnv(options);
  describe(`plugmq conformance: ${options.name}`, () => {
    beforeAll(() => env.setup(), env.ms(60_000));
    beforeEach((context) => {
      env.logs.reset();
      context.onTestFailed(() => {
        console.error(
          `[conformance] ${options.name} > ${context.task.name}: the driver's log\n${env.logs.report()}`,
        );
      });
    });
    afterEach(() => env.cleanup(), env.ms(120_000));
    afterAll(() => env.teardown(), env.ms(60_000));

    describe('delivery', () => deliveryScenarios(env));
    describe('codecs', () => codecScenarios(env));
    describe('retry and dead-letter', () => retryScenarios(env));
    describe('non-retryable errors and idempotent consumers', () => handlerControlScenarios(env));
    describe('concurrency', () => concurrencyScenarios(env));
    describe('features and capabilities', () => featureScenarios(env));
    describe('close and drain', () => closeScenarios(env));
    describe('batch handlers', () => batchScenarios(env));
    describe('request/reply', () => requestReplyScenarios(env));
    describe('message catalog and schemas', () => catalogScenarios(env));
    describe('validation and errors', () => validationScenarios(env));
    describe('inspection and dead letters at rest', () => inspectionScenarios(env));
    describe('configuration, connection and back-pressure', () => backpressureScenarios(env));
  });
}
