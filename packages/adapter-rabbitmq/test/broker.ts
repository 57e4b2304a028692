import { type BrokerHandle, startBroker } from '@plugmq/testkit';

/**
 * The broker for functional tests: `PLUGMQ_RABBITMQ_URL`, else a container, else a local process
 * (also when a container engine is there but fails to start one).
 */
export async function rabbitBroker(): Promise<BrokerHandle> {
  try {
    return await startBroker('rabbitmq');
  } catch (error) {
    return fallBackToProcess(error);
  }
}

function fallBackToProcess(error: unknown): Promise<BrokerHandle> {
  console.warn(
    `[adapter-rabbitmq] no broker from the preferred source (${String(error).split('\n')[0]}); trying a local process`,
  );
  return startBroker('rabbitmq', { source: 'process' });
}

/**
 * A broker this test run owns (never the user's from the environment, never the one other test
 * files share), for tests that restart it: a container, else a local process, also when a
 * container engine is there but fails to start one.
 */
export async function ownedRabbitBroker(): Promise<BrokerHandle> {
  try {
    return await startBroker('rabbitmq', { source: ['container', 'process'] });
  } catch (error) {
    return fallBackToProcess(error);
  }
}
