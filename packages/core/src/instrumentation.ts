import { PlugmqError } from './errors.js';
import type { QueueManager } from './types.js';

/**
 * The instrumentation surface (events, use, subscriptionInfo). Every manager has it now: kept as a
 * name for integrations written against it.
 */
export type Instrumentable = QueueManager;

/**
 * `queue`, checked to have the instrumentation surface: metrics, tracing and dashboards call it so
 * that a hand-made QueueManager (a test double) fails with a message instead of a TypeError.
 * Checked by shape, not `instanceof`, so it works across duplicate installs and the ESM/CJS builds.
 */
export function instrumentable(queue: QueueManager): Instrumentable {
  const candidate = queue as Partial<QueueManager>;
  if (
    typeof candidate.events?.on !== 'function' ||
    typeof candidate.use !== 'function' ||
    typeof candidate.subscriptionInfo !== 'function'
  ) {
    throw new PlugmqError(
      'UNSUPPORTED',
      `the ${queue.driver} manager has no instrumentation (events, use, subscriptionInfo): it was not made by createQueueManager`,
    );
  }
  return queue;
}
