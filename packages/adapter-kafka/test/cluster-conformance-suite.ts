import { createQueueManager, registerDriver } from '@plugmq/core';
import {
  canStartKafkaCluster,
  type KafkaCluster,
  runConformance,
  skipUnlessCI,
  startKafkaCluster,
} from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';
import { TEST_OPTIONS } from './broker.js';

registerDriver(driver);

// The whole conformance suite again, on a three-node Kafka 3.9 KRaft cluster on loopback (the
// testkit's startKafkaCluster: min.insync.replicas 2), the driver creating every topic with
// replication 3, through a manager that lists every node. One cluster for the file. Needs java
// and the Kafka jars (`pnpm brokers:up kafka`); under CI=true their absence fails the run.
const available = await canStartKafkaCluster();
if (!available && process.env.CI === 'true') {
  throw new Error('java or the Kafka jars are missing: cannot start the loopback Kafka cluster under CI');
}

/**
 * The cluster conformance run on one of the adapter's two clients (cluster-conformance.test.ts:
 * kafkajs, cluster-conformance-platformatic.test.ts: @platformatic/kafka).
 */
export function runKafkaClusterConformance(client: 'kafkajs' | 'platformatic'): void {
  const platformatic = client === 'platformatic';
  if (!available) {
    skipUnlessCI(
      `plugmq conformance: kafka-cluster${platformatic ? ' (platformatic)' : ''}`,
      'java or the Kafka jars are missing; pnpm brokers:up kafka installs them',
    );
    return;
  }
  let cluster: KafkaCluster | undefined;
  beforeAll(async () => {
    cluster = await startKafkaCluster();
  }, 240_000);
  afterAll(() => cluster?.stop(), 120_000);
  runConformance({
    name: `kafka-cluster (${platformatic ? 'platformatic, ' : ''}3 nodes, RF 3)`,
    // Every topic the driver creates is replicated on three JVMs sharing the machine's cores.
    timeScale: 4,
    create: (overrides) =>
      createQueueManager({
        driver: 'kafka',
        url: cluster?.url,
        ...TEST_OPTIONS,
        client,
        replicationFactor: 3,
        ...overrides,
      }),
    // SASL/PLAIN credentials from the URL; nothing listens on port 1.
    unreachable: { url: 'kafka://user:s3cret@127.0.0.1:1', connectTimeoutMs: 2_000, client },
    sizeLimit: { overrides: { maxMessageBytes: 4096 }, option: 'maxMessageBytes', maxBytes: 4096 },
  });
}
