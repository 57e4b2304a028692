import { createQueueManager, registerDriver } from '@plugmq/core';
import { runConformance } from '@plugmq/testkit';
import { driver } from '../src/index.js';

registerDriver(driver);

runConformance({
  name: 'memory',
  create: (overrides) => createQueueManager({ driver: 'memory', ...overrides }),
  // A separate namespace, so the tiny buffer applies only to the back-pressure scenarios.
  smallBuffer: { bufferSize: 4, namespace: 'conformance-backpressure' },
});
