import { PlugmqError, type PlugmqEvent, type QueueManager } from '@plugmq/core';
import { register as globalRegistry, type Registry } from 'prom-client';
import { storeFor } from './collectors.js';
import type { MetricsStore } from './store.js';

export { METRIC_NAMES } from './collectors.js';

export interface PlugmqMetricsOptions {
  /** Where the metrics are registered (default: prom-client's global registry). */
  readonly registry?: Registry;
  /** Handler duration buckets in seconds (the first PlugmqMetrics on a registry decides). */
  readonly buckets?: readonly number[];
  /**
   * Reads each observed manager's `inspect()` this often (ms) for the broker-side gauges
   * (`plugmq_group_backlog`, `plugmq_group_oldest_age_seconds`, `plugmq_dead_letters`). Default:
   * off (one inspect() is a few broker round trips); a manager whose driver cannot inspect is
   * skipped.
   */
  readonly inspectIntervalMs?: number;
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
  private readonly inspectIntervalMs: number | undefined;
  /** Observed managers that can inspect (UNSUPPORTED ones are dropped at their first refusal). */
  private readonly inspected = new Set<QueueManager>();

  constructor(options: PlugmqMetricsOptions = {}) {
    this.registry = options.registry ?? globalRegistry;
    this.store = storeFor(this.registry, options.buckets ?? DEFAULT_DURATION_BUCKETS);
    const interval = options.inspectIntervalMs;
    if (interval !== undefined && !(Number.isInteger(interval) && interval > 0)) {
      throw new PlugmqError(
        'INVALID_ARGUMENT',
        `options.inspectIntervalMs must be a positive integer (got ${String(interval)})`,
      );
    }
    this.inspectIntervalMs = interval;
  }

  /** Starts counting `queue`'s events (and inspecting it, see inspectIntervalMs); returns a function that stops. */
  observe(queue: QueueManager): () => void {
    const stopEvents = queue.events.on(this.record);
    if (this.inspectIntervalMs === undefined) return stopEvents;
    this.inspected.add(queue);
    void this.refreshOne(queue);
    const timer = setInterval(() => {
      if (this.inspected.has(queue)) void this.refreshOne(queue);
      else clearInterval(timer);
    }, this.inspectIntervalMs);
    timer.unref();
    return () => {
      clearInterval(timer);
      this.inspected.delete(queue);
      stopEvents();
    };
  }

  /** Reads inspect() of every observed manager now (the interval does it by itself). */
  async refreshInspection(): Promise<void> {
    await Promise.all([...this.inspected].map((queue) => this.refreshOne(queue)));
  }

  /**
   * A failed read keeps the previous figures: a scrape shows the last known broker state. A
   * manager that cannot inspect, or was closed, is not asked again.
   */
  private async refreshOne(queue: QueueManager): Promise<void> {
    try {
      const inspection = await queue.inspect();
      this.store.inspections.set(inspection.driver, inspection);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'UNSUPPORTED' || code === 'CLOSED') this.inspected.delete(queue);
    }
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
