import { createQueueManager, registerDriver } from '@plugmq/core';
import { runConformance } from '@plugmq/testkit';
import { driver } from '../src/index.js';

registerDriver(driver);

runConformance({
  name: 'memory',
  create: (overrides) => createQueueManager({ driver: 'memory', ...overrides }),
});
