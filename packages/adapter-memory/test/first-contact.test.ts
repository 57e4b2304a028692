import { createQueueManager, registerDriver } from '@plugmq/core';
import { runFirstContact } from '@plugmq/testkit';
import { driver } from '../src/index.js';

registerDriver(driver);

// No broker, so no connect failures: only the life cycle (no warnings, responder outcomes acked).
runFirstContact({
  name: 'memory',
  create: (overrides) => createQueueManager({ driver: 'memory', ...overrides }),
});
