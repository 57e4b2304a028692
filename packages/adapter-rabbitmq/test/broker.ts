import { type BrokerHandle, startBroker } from '@plugmq/testkit';

/** The shared broker for functional tests: `PLUGMQ_RABBITMQ_URL`, else a container, else a local process. */
export function rabbitBroker(): Promise<BrokerHandle> {
  return startBroker('rabbitmq');
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
    console.warn(
      `[adapter-rabbitmq] no container broker (${String(error).split('\n')[0]}); trying a local process`,
    );
    return startBroker('rabbitmq', { source: 'process' });
  }
}
