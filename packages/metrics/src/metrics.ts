import { instrumentable, type PlugmqEvent, type QueueManager } from '@plugmq/core';
import { Counter, Gauge, register as globalRegistry, Histogram, type Registry } from 'prom-client';

export interface PlugmqMetricsOptions {
  /** Where the metrics are registered (default: prom-client's global registry). */
  readonly registry?: Registry;
  /** Handler duration buckets in seconds. */
  readonly buckets?: readonly number[];
}

/** Default buckets: sub-millisecond in-process handlers up to slow I/O-bound ones. */
export const DEFAULT_DURATION_BUCKETS = [
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The metric names, for dashboards and alert rules. */
export const METRIC_NAMES = {
  published: 'plugmq_messages_published_total',
  handled: 'plugmq_messages_handled_total',
  retried: 'plugmq_messages_retried_total',
  deadLettered: 'plugmq_messages_dead_lettered_total',
  dropped: 'plugmq_messages_dropped_total',
  unrouted: 'plugmq_messages_unrouted_total',
  duration: 'plugmq_handler_duration_seconds',
  inFlight: 'plugmq_in_flight',
} as const;

type Labels = Record<string, string>;

/** An existing metric of that name (a second PlugmqMetrics on one registry shares it), else a new one. */
function metric<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

/**
 * Prometheus metrics for any number of managers, fed by core's events: counters of published,
 * handled (by outcome), retried, dead-lettered, dropped and unrouted messages, a handler duration
 * histogram and an in-flight gauge, labelled driver/type/group.
 */
export class PlugmqMetrics {
  readonly registry: Registry;
  private readonly published: Counter<string>;
  private readonly handled: Counter<string>;
  private readonly retried: Counter<string>;
  private readonly deadLettered: Counter<string>;
  private readonly dropped: Counter<string>;
  private readonly unrouted: Counter<string>;
  private readonly duration: Histogram<string>;
  private readonly inFlight: Gauge<string>;
  /** Label children cached per label set: prom-client hashes labels on every call otherwise. */
  private readonly children = new Map<string, { inc(value?: number): void }>();
  private readonly timers = new Map<string, { observe(value: number): void }>();
  private readonly gauges = new Map<string, { inc(value?: number): void; dec(value?: number): void }>();

  constructor(options: PlugmqMetricsOptions = {}) {
    const registry = options.registry ?? globalRegistry;
    this.registry = registry;
    const registers = [registry];
    const counter = (name: string, help: string, labelNames: string[]) =>
      metric(registry, name, () => new Counter({ name, help, labelNames, registers }));
    this.published = counter(METRIC_NAMES.published, 'Messages published (broker-confirmed).', [
      'driver',
      'type',
    ]);
    this.handled = counter(METRIC_NAMES.handled, 'Handler runs, by outcome (acked or failed).', [
      'driver',
      'type',
      'group',
      'outcome',
    ]);
    this.retried = counter(METRIC_NAMES.retried, 'Failed deliveries scheduled for another attempt.', [
      'driver',
      'type',
      'group',
    ]);
    this.deadLettered = counter(METRIC_NAMES.deadLettered, 'Messages moved to a dead-letter type.', [
      'driver',
      'type',
      'group',
      'dead_letter_type',
    ]);
    this.dropped = counter(METRIC_NAMES.dropped, 'Exhausted messages dropped (deadLetter: false).', [
      'driver',
      'type',
      'group',
    ]);
    this.unrouted = counter(METRIC_NAMES.unrouted, 'Messages published to a type no group receives.', [
      'driver',
      'type',
    ]);
    this.duration = metric(
      registry,
      METRIC_NAMES.duration,
      () =>
        new Histogram({
          name: METRIC_NAMES.duration,
          help: 'Handler run time in seconds.',
          labelNames: ['driver', 'type', 'group', 'outcome'],
          buckets: [...(options.buckets ?? DEFAULT_DURATION_BUCKETS)],
          registers,
        }),
    );
    this.inFlight = metric(
      registry,
      METRIC_NAMES.inFlight,
      () =>
        new Gauge({
          name: METRIC_NAMES.inFlight,
          help: 'Handlers running now.',
          labelNames: ['driver', 'type', 'group'],
          registers,
        }),
    );
  }

  /** Starts counting `queue`'s events; returns a function that stops. */
  observe(queue: QueueManager): () => void {
    return instrumentable(queue).events.on(this.record);
  }

  /** The exposition text for `/metrics`. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  readonly record = (event: PlugmqEvent): void => {
    switch (event.kind) {
      case 'published':
        this.count(this.published, `p\0${event.driver}\0${event.type}`, {
          driver: event.driver,
          type: event.type,
        }).inc(event.count);
        return;
      case 'delivered':
        this.gauge(event.driver, event.type, event.group).inc();
        return;
      case 'handled': {
        const { driver, type, group, outcome } = event;
        this.gauge(driver, type, group).dec();
        this.count(this.handled, `h\0${driver}\0${type}\0${group}\0${outcome}`, {
          driver,
          type,
          group,
          outcome,
        }).inc();
        const key = `${driver}\0${type}\0${group}\0${outcome}`;
        let timer = this.timers.get(key);
        if (!timer) {
          timer = this.duration.labels({ driver, type, group, outcome });
          this.timers.set(key, timer);
        }
        timer.observe(event.durationMs / 1000);
        return;
      }
      case 'retried':
        this.count(this.retried, `r\0${event.driver}\0${event.type}\0${event.group}`, {
          driver: event.driver,
          type: event.type,
          group: event.group,
        }).inc();
        return;
      case 'dead-lettered':
        this.count(
          this.deadLettered,
          `d\0${event.driver}\0${event.type}\0${event.group}\0${event.deadLetter}`,
          {
            driver: event.driver,
            type: event.type,
            group: event.group,
            dead_letter_type: event.deadLetter,
          },
        ).inc();
        return;
      case 'dropped':
        this.count(this.dropped, `x\0${event.driver}\0${event.type}\0${event.group}`, {
          driver: event.driver,
          type: event.type,
          group: event.group,
        }).inc();
        return;
      case 'unrouted':
        this.count(this.unrouted, `u\0${event.driver}\0${event.type}`, {
          driver: event.driver,
          type: event.type,
        }).inc();
        return;
      default:
        return;
    }
  };

  private count(counter: Counter<string>, key: string, labels: Labels): { inc(value?: number): void } {
    let child = this.children.get(key);
    if (!child) {
      child = counter.labels(labels);
      this.children.set(key, child);
    }
    return child;
  }

  private gauge(driver: string, type: string, group: string) {
    const key = `${driver}\0${type}\0${group}`;
    let child = this.gauges.get(key);
    if (!child) {
      child = this.inFlight.labels({ driver, type, group });
      this.gauges.set(key, child);
    }
    return child;
  }
}

/** `const metrics = createPlugmqMetrics(); metrics.observe(queue);` then serve `await metrics.text()`. */
export function createPlugmqMetrics(options?: PlugmqMetricsOptions): PlugmqMetrics {
  return new PlugmqMetrics(options);
}
