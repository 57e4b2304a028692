import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { brokerScenarios } from './broker-scenarios.js';
import { dataScenarios } from './data-scenarios.js';
import { FaultEnv, type FaultSuiteOptions } from './env.js';
import { processScenarios } from './process-scenarios.js';

export { bundleChildConsumer, type ChildBundle, ChildConsumer, type ChildConsumerArgs } from './child.js';
export { runChildConsumer } from './child-main.js';
export {
  type ClusterFaultScenario,
  type ClusterFaultSuiteOptions,
  type ClusterStreamContext,
  runClusterFaultSuite,
} from './cluster-scenarios.js';
export {
  type DeadLetterProbe,
  FaultEnv,
  type FaultScenario,
  type FaultServer,
  type FaultSuiteOptions,
} from './env.js';
export { faultLogger } from './fault-logger.js';
export { type FaultFigure, FigureBook, figuresTable } from './figures.js';
export { TcpProxy } from './proxy.js';
export { RssSampler } from './rss.js';
export { DeliveryLedger, publishStream, type StreamOptions } from './stream.js';

/**
 * Registers PlugMQ's fault suite (issue 10's eight scenarios) for one driver, on a broker the suite
 * owns and restarts. Call it at the top level of a test file run by `pnpm test:faults`:
 *
 *   runFaultSuite({ name: 'redis', kind: 'redis', driver, config: (url) => ({ driver: 'redis', url }) });
 *
 * Scenarios run one after the other (they restart the shared broker). A scenario that does not
 * apply is skipped with the reason in its name. The figures table is printed when the suite ends.
 */
export function runFaultSuite(options: FaultSuiteOptions): void {
  const env = new FaultEnv(options);
  describe(`plugmq faults: ${options.name}`, () => {
    beforeAll(() => env.setup(), 180_000);
    afterEach(() => env.cleanup(), 120_000);
    afterAll(() => env.teardown(), 120_000);
    brokerScenarios(env);
    processScenarios(env);
    dataScenarios(env);
  });
}
