import { PlugmqError } from './errors.js';
import type { PlugmqEventListener, SubscriptionInfo } from './events.js';
import type { ManagerMiddleware } from './hooks.js';
import type { QueueManager } from './types.js';

/** The instrumentation surface of a core-built manager (every driver made with defineTransportDriver). */
export interface Instrumentable extends QueueManager {
  readonly events: { on(listener: PlugmqEventListener): () => void; readonly enabled: boolean };
  use(middleware: ManagerMiddleware): () => void;
  subscriptionInfo(): SubscriptionInfo[];
}

/**
 * The manager as an Instrumentable, for metrics, tracing and dashboards. Checked by shape, not
 * `instanceof`, so it works across duplicate installs and the ESM/CJS builds of core.
 */
export function instrumentable(queue: QueueManager): Instrumentable {
  const candidate = queue as Partial<Instrumentable>;
  if (
    typeof candidate.events?.on !== 'function' ||
    typeof candidate.use !== 'function' ||
    typeof candidate.subscriptionInfo !== 'function'
  ) {
    throw new PlugmqError(
      'UNSUPPORTED',
      `the ${queue.driver} manager has no instrumentation (events, use, subscriptionInfo); build the driver with defineTransportDriver`,
    );
  }
  return candidate as Instrumentable;
}
