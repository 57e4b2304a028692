import { fileURLToPath } from 'node:url';
import { faultLogger, runFaultSuite } from '@plugmq/testkit';
import { driver } from '../../src/index.js';
import { inspectLostOnRabbit } from './inspect-lost.js';

// The scenarios that exercise the opt-in paths (issue 19), with both options on: a broker restart
// during delayed and prioritised traffic on partition queues and a stream-queue log, and a consumer
// SIGKILLed while it is the single active consumer of partitions (scenario 3 is keyed where the
// driver orders by key, and checks the survivor's per-key order). The other scenarios fault
// nothing these options change; faults.test.ts runs them on the default topology.
const exchange = 'plugmq-faults-options';
const onDefaultTopology = 'runs in faults.test.ts (nothing partition- or retention-specific)';

runFaultSuite({
  name: 'rabbitmq (partitions, retentionMs)',
  kind: 'rabbitmq',
  driver,
  config: (url) => ({
    driver: 'rabbitmq',
    url,
    exchange,
    reconnectMaxDelayMs: 1_000,
    partitions: 4,
    retentionMs: 600_000,
    ...(faultLogger() ? { logger: faultLogger() } : {}),
  }),
  inspectLost: (url) => inspectLostOnRabbit(url, exchange),
  driverModule: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
  coreEntry: fileURLToPath(new URL('../../../core/src/index.ts', import.meta.url)),
  only: { scenarios: ['restart', 'kill', 'consumerKill'], reason: onDefaultTopology },
});
