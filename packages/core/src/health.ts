import { describeError } from './errors.js';
import type { ManagedSubscription } from './subscription.js';
import type { Transport } from './transport.js';
import type { HealthReport } from './types.js';

/**
 * `QueueManager.health()` of an open manager: the transport's answer, then what core knows of
 * each subscription, so a readiness probe can name the one that is not live.
 */
export async function healthReport(
  driver: string,
  transport: Transport,
  subscriptions: ReadonlySet<ManagedSubscription>,
  unroutedByType: ReadonlyMap<string, number>,
): Promise<HealthReport> {
  let transportHealth: { ok: boolean; details?: Record<string, unknown> };
  try {
    transportHealth = await transport.health();
  } catch (error) {
    transportHealth = { ok: false, details: { error: describeError(error) } };
  }
  const states = [...subscriptions].map((s) => ({ group: s.group, types: s.types, state: s.state }));
  return {
    ok: transportHealth.ok,
    driver,
    details: {
      ...transportHealth.details,
      subscriptions: subscriptions.size,
      subscriptionStates: states,
      // Readiness probes look at this: a subscription still starting, stopping or lost.
      notLive: states.filter((s) => s.state !== 'live'),
      inFlight: [...subscriptions].reduce((sum, s) => sum + s.inFlight, 0),
      unrouted: Object.fromEntries(unroutedByType),
    },
  };
}
