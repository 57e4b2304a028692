import { afterAll, beforeAll, describe } from 'vitest';
import { isCI } from './env.js';
import { brokerAvailability, brokerUnavailable, howToGet, startBroker } from './start.js';
import type { BrokerHandle, BrokerKind, StartBrokerOptions } from './types.js';

/**
 * A describe block with a broker of `kind` started before its tests and removed after them.
 * Use with top-level await, since finding out whether a broker can be had is asynchronous:
 *
 *   await describeWithBroker('redis', 'redis driver', (broker) => {
 *     it('works', async () => { const url = broker().url; ... });
 *   });
 *
 * No broker to be had: under CI=true this throws (the file fails and says which broker and why);
 * elsewhere the block is skipped, counted as skipped, and its name says how to start the broker.
 */
export async function describeWithBroker(
  kind: BrokerKind,
  name: string,
  body: (broker: () => BrokerHandle) => void,
  options: StartBrokerOptions = {},
): Promise<void> {
  const { source, reasons } = await brokerAvailability(kind, options);
  if (!source) {
    const error = brokerUnavailable(kind, reasons);
    if (isCI()) throw error;
    describe.skip(`${name} [skipped: no ${kind} broker; ${reasons.join('; ')}. ${howToGet(kind)}]`, () => {
      body(() => {
        throw error;
      });
    });
    return;
  }
  describe(name, () => {
    let handle: BrokerHandle | undefined;
    beforeAll(async () => {
      handle = await startBroker(kind, { ...options, source });
    });
    afterAll(async () => {
      await handle?.stop();
    });
    body(() => {
      if (!handle) throw new Error(`${kind} broker not started (see the beforeAll error)`);
      return handle;
    });
  });
}

/**
 * The stand-in for a describe block whose brokers this machine cannot run (a cluster's programs
 * missing): under CI=true it throws, so the file fails and says what is missing (CI provisions
 * everything); elsewhere the block is skipped and its name says how to get what is missing.
 */
export function skipUnlessCI(name: string, missing: string): void {
  if (isCI()) throw new Error(`${name}: cannot run under CI: ${missing}`);
  describe.skip(`${name} [skipped: ${missing}]`, () => {});
}
