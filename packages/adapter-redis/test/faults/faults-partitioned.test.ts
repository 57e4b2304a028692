import { fileURLToPath } from 'node:url';
import { runFaultSuite } from '@plugmq/testkit';
import { driver } from '../../src/index.js';

// The scenarios that exercise ordering by key (`partitions: 4`): Redis restarted and SIGKILLed
// under subscriptions that hold partition leases (renewals fail meanwhile, the partitions pause
// and are read again once a round succeeds), and a consumer process SIGKILLed while it holds
// partitions (scenario 3 is keyed where the driver orders by key: the survivor takes the dead
// consumer's partitions once their leases expire, claims their pending entries first, and must
// keep each key's order). The other scenarios fault nothing partitions change; faults.test.ts
// runs them on the default topology.
const onDefaultTopology = 'runs in faults.test.ts (nothing partition-specific)';

runFaultSuite({
  name: 'redis (partitions: 4)',
  kind: 'redis',
  driver,
  // Short claim timings as in faults.test.ts; a short lease so the dead consumer's partitions
  // move within seconds.
  config: (url) => ({
    driver: 'redis',
    url,
    keyPrefix: 'faults-partitioned',
    claimMinIdleMs: 1_000,
    claimIntervalMs: 200,
    partitions: 4,
    leaseMs: 3_000,
  }),
  driverModule: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
  coreEntry: fileURLToPath(new URL('../../../core/src/index.ts', import.meta.url)),
  only: { scenarios: ['restart', 'kill', 'consumerKill'], reason: onDefaultTopology },
});
