import { type BrokerHandle, brokerAvailability, brokerUnavailable, startBroker } from '@plugmq/testkit';

/**
 * Driver options for tests: shorter group timings than production defaults, so rebalances
 * (every consume/close in the suite is one) settle in a second or two instead of tens.
 */
export const TEST_OPTIONS = {
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 500,
  rebalanceTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxWaitTimeMs: 50,
} as const;

/** PLUGMQ_KAFKA_URL when set, else a broker the testkit starts (container or local process). */
export function kafkaBroker(): Promise<BrokerHandle> {
  return startBroker('kafka');
}

/**
 * A broker the tests may restart: never the one from PLUGMQ_KAFKA_URL (someone else's), but one
 * the testkit starts itself (container, else local process).
 */
export async function restartableKafka(): Promise<BrokerHandle> {
  const reasons: string[] = [];
  for (const source of ['container', 'process'] as const) {
    const { source: available, reasons: why } = await brokerAvailability('kafka', { source });
    if (available) return startBroker('kafka', { source });
    reasons.push(...why);
  }
  throw brokerUnavailable('kafka', reasons);
}
