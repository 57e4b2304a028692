import { urlFromEnv, urlVariable } from './env.js';
import { waitUntilServes } from './probe.js';
import type { BrokerHandle, BrokerKind, BrokerProvider } from './types.js';

// A broker named by PLUGMQ_<KIND>_URL belongs to someone else (a user, CI): used as it is, never
// started, stopped or faulted by the tests.

class ExternalBroker implements BrokerHandle {
  readonly source = 'env' as const;
  constructor(
    readonly kind: BrokerKind,
    readonly url: string,
  ) {}

  async stop(): Promise<void> {
    // Not ours to stop.
  }

  async restart(): Promise<void> {
    throw new Error(
      `restart() is not possible on the ${this.kind} broker from ${urlVariable(this.kind)}: the tests did not start it. ` +
        `Unset ${urlVariable(this.kind)} to let the testkit start its own broker for fault tests.`,
    );
  }

  async kill(): Promise<void> {
    throw new Error(
      `kill() is not possible on the ${this.kind} broker from ${urlVariable(this.kind)}: the tests did not start it. ` +
        `Unset ${urlVariable(this.kind)} to let the testkit start its own broker for fault tests.`,
    );
  }
}

export const envProvider: BrokerProvider = {
  source: 'env',

  async unavailableReason(kind) {
    return urlFromEnv(kind) ? undefined : `${urlVariable(kind)} is not set`;
  },

  async start(kind, options) {
    const url = urlFromEnv(kind);
    if (!url) throw new Error(`${urlVariable(kind)} is not set`);
    // Fail fast with the URL in the message if the user's broker does not answer.
    await waitUntilServes(kind, url, Math.min(options.startupTimeoutMs ?? 15_000, 15_000));
    return new ExternalBroker(kind, url);
  },
};
