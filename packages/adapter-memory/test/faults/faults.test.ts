import { fileURLToPath } from 'node:url';
import { runFaultSuite } from '@plugmq/testkit';
import { driver } from '../../src/index.js';

// The in-process driver: no broker to restart, kill or cut off, no process boundary, no bytes
// (messages stay objects) to corrupt; what applies is close() and the flood's back-pressure.
runFaultSuite({
  name: 'memory',
  driver,
  config: () => ({ driver: 'memory', namespace: 'faults', publishTimeoutMs: 120_000 }),
  driverModule: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
  skip: {
    consumerKill: 'in-process: a consumer in another process cannot share the group',
    malformed: 'in-process: messages are never bytes, nothing to corrupt',
  },
  floodBackpressure: true,
});
