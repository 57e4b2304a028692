import type { PlugmqEvent, QueueManager } from '@plugmq/core';
import { register as globalRegistry, type Registry } from 'prom-client';
import { storeFor } from './collectors.js';
import type { MetricsStore } from './store.js';

export { METRIC_NAMES } from './collectors.js';

export interface PlugmqMetricsOptions {
  /** Where the metrics are registered (default: prom-client's global registry). */
  readonly registry?: Registry;
  /** Handler duration buckets in seconds (the first PlugmqMetrics on a registry decides). */
  readonly buckets?: readonly number[];
}

/** Default buckets: sub-millisecond in-process handlers up to slow I/O-bound ones. */
export const DEFAULT_DURATION_BUCKETS = [
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Prometheus metrics for any number of managers, fed by core's events: counters of published,
 * handled (by outcome), retried, dead-lettered, dropped and unrouted messages, a handler duration
 * histogram and an in-flight gauge, labelled driver/type/group. Events only bump plain numbers;
 * prom-client's registry reads them when scraped.
 */
export class PlugmqMetrics {
  readonly registry: Registry;
  private readonly store: MetricsStore;

  constructor(options: PlugmqMetricsOptions = {}) {
    this.registry = options.registry ?? globalRegistry;
    this.store = storeFor(this.registry, options.buckets ?? DEFAULT_DURATION_BUCKETS);
  }

  /** Starts counting `queue`'s events; returns a function that stops. */
  observe(queue: QueueManager): () => void {
    return queue.events.on(this.record);
  }

  /** The exposition text for `/metrics` (the whole registry). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  readonly record = (event: PlugmqEvent): void => {
    const store = this.store;
    switch (event.kind) {
      case 'published':
        store.typeRow(event.driver, event.type).published += event.count;
        return;
      case 'unrouted':
        store.typeRow(event.driver, event.type).unrouted++;
        return;
      case 'delivered':
        store.groupRow(event.driver, event.type, event.group).inFlight++;
        return;
      case 'handled': {
        const row = store.groupRow(event.driver, event.type, event.group);
        if (row.inFlight > 0) row.inFlight--;
        if (event.outcome === 'acked') {
          row.acked++;
          store.observe(row.ackedSeconds, event.durationMs / 1000);
        } else {
          row.failed++;
          store.observe(row.failedSeconds, event.durationMs / 1000);
        }
        return;
      }
      case 'retried':
        store.groupRow(event.driver, event.type, event.group).retried++;
        return;
      case 'dead-lettered': {
        const { deadLettered } = store.groupRow(event.driver, event.type, event.group);
        deadLettered.set(event.deadLetter, (deadLettered.get(event.deadLetter) ?? 0) + 1);
        return;
      }
      case 'dropped':
        store.groupRow(event.driver, event.type, event.group).dropped++;
        return;
      default:
        return;
    }
  };
}

/** `const metrics = createPlugmqMetrics(); metrics.observe(queue);` then serve `await metrics.text()`. */
export function createPlugmqMetrics(options?: PlugmqMetricsOptions): PlugmqMetrics {
  return new PlugmqMetrics(options);
}
