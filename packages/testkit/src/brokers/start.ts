import { containerProvider } from './container.js';
import { isCI, urlVariable } from './env.js';
import { envProvider } from './env-broker.js';
import { processProvider } from './process.js';
import { maskUrl } from './provision-plan.js';
import type { BrokerHandle, BrokerKind, BrokerProvider, BrokerSource, StartBrokerOptions } from './types.js';

// BROKERS.md's order: a URL from the environment, else a container engine, else a local process.

const PROVIDERS: readonly BrokerProvider[] = [envProvider, containerProvider, processProvider];

/** No source could give a broker: which broker, and why each source could not. */
export class BrokerUnavailableError extends Error {
  constructor(
    readonly kind: BrokerKind,
    readonly reasons: string[],
  ) {
    super(`no ${kind} broker available:\n  - ${reasons.join('\n  - ')}\n${howToGet(kind)}`);
    this.name = 'BrokerUnavailableError';
  }
}

export function howToGet(kind: BrokerKind): string {
  return (
    `To get one: set ${urlVariable(kind)} to your own broker, or run Docker (official image), ` +
    `or run \`pnpm brokers:images\` (podman images), or \`pnpm brokers:up ${kind}\` (local install).`
  );
}

function candidates(options: StartBrokerOptions): readonly BrokerProvider[] {
  const wanted = options.source;
  if (wanted === undefined) return PROVIDERS;
  const list: readonly BrokerSource[] = typeof wanted === 'string' ? [wanted] : wanted;
  return PROVIDERS.filter((p) => list.includes(p.source));
}

export interface Availability {
  source?: BrokerSource;
  reasons: string[];
}

/** Which source would give a `kind` broker, without starting anything; reasons if none. */
export async function brokerAvailability(
  kind: BrokerKind,
  options: StartBrokerOptions = {},
): Promise<Availability> {
  const reasons: string[] = [];
  for (const provider of candidates(options)) {
    const reason = await provider.unavailableReason(kind);
    if (reason === undefined) return { source: provider.source, reasons };
    reasons.push(`${provider.source}: ${reason}`);
  }
  return { reasons };
}

/**
 * A broker for this test run. From `PLUGMQ_<KIND>_URL` it is used as is (stop() is a no-op);
 * otherwise the testkit starts one on free ports and removes it when stop()ped, when
 * stopAllBrokers() runs, or when the test process ends, whichever comes first.
 */
export async function startBroker(kind: BrokerKind, options: StartBrokerOptions = {}): Promise<BrokerHandle> {
  const { source, reasons } = await brokerAvailability(kind, options);
  const provider = PROVIDERS.find((p) => p.source === source);
  if (!provider) throw brokerUnavailable(kind, reasons);
  const t0 = Date.now();
  const handle = await provider.start(kind, options);
  // One line per broker in the test log: where it came from and how long it took to serve.
  console.info(
    `[plugmq/testkit] ${kind} from ${handle.source} serving at ${maskUrl(handle.url)} in ${Date.now() - t0} ms`,
  );
  return handle;
}

/**
 * The error for "no broker": thrown as is under CI (a missing broker must fail the run, never skip
 * silently); callers outside CI may catch it and skip, as describeWithBroker does.
 */
export function brokerUnavailable(kind: BrokerKind, reasons: string | string[]): BrokerUnavailableError {
  return new BrokerUnavailableError(kind, Array.isArray(reasons) ? reasons : [reasons]);
}

/** True when a missing broker must fail the run (CI=true) rather than skip. */
export function brokersRequired(): boolean {
  return isCI();
}
