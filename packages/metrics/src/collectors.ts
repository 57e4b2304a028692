import type { Registry } from 'prom-client';
import { type GroupRow, type Histogram, MetricsStore } from './store.js';

type Labels = Record<string, string | number>;
interface Value {
  value: number;
  labels: Labels;
  metricName?: string;
}

/** The metric object shape prom-client's Registry formats (what its own metric classes return). */
interface Collector {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: 'sum';
  get(): { name: string; help: string; type: string; aggregator: 'sum'; values: Value[] };
  reset(): void;
  /** Marks PlugMQ's own collectors, so a second PlugmqMetrics on a registry can share them. */
  readonly plugmqStore: MetricsStore;
}

export const METRIC_NAMES = {
  published: 'plugmq_messages_published_total',
  handled: 'plugmq_messages_handled_total',
  retried: 'plugmq_messages_retried_total',
  deadLettered: 'plugmq_messages_dead_lettered_total',
  dropped: 'plugmq_messages_dropped_total',
  unrouted: 'plugmq_messages_unrouted_total',
  duration: 'plugmq_handler_duration_seconds',
  inFlight: 'plugmq_in_flight',
  backlog: 'plugmq_group_backlog',
  oldestAge: 'plugmq_group_oldest_age_seconds',
  deadLetters: 'plugmq_dead_letters',
} as const;

function collector(
  store: MetricsStore,
  name: string,
  help: string,
  type: Collector['type'],
  values: () => Value[],
): Collector {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    plugmqStore: store,
    get: () => ({ name, help, type, aggregator: 'sum', values: values() }),
    reset: () => store.reset(),
  };
}

function histogramValues(
  name: string,
  buckets: readonly number[],
  labels: Labels,
  histogram: Histogram,
): Value[] {
  const values: Value[] = [];
  let cumulative = 0;
  buckets.forEach((le, index) => {
    cumulative += histogram.counts[index] ?? 0;
    values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
  });
  values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count });
  values.push({ metricName: `${name}_sum`, labels, value: histogram.sum });
  values.push({ metricName: `${name}_count`, labels, value: histogram.count });
  return values;
}

const perGroup = (store: MetricsStore, pick: (row: GroupRow) => Value[]) => () =>
  [...store.groupRows()].flatMap(pick);

/** Broker-side gauges from the latest inspect() of each driver (empty until one ran). */
function inspectionCollectors(store: MetricsStore): Collector[] {
  const groups = () =>
    [...store.inspections].flatMap(([driver, inspection]) =>
      inspection.groups.map((state) => ({ driver, state })),
    );
  return [
    collector(
      store,
      METRIC_NAMES.backlog,
      'Messages waiting for a group on the broker, not yet delivered (from inspect()).',
      'gauge',
      () =>
        groups().map(({ driver, state }) => ({
          labels: { driver, type: state.type, group: state.group },
          value: state.backlog,
        })),
    ),
    collector(
      store,
      METRIC_NAMES.oldestAge,
      'Age of the oldest message waiting for a group, where the broker can tell (from inspect()).',
      'gauge',
      () =>
        groups()
          .filter(({ state }) => state.oldestWaitingMs !== undefined)
          .map(({ driver, state }) => ({
            labels: { driver, type: state.type, group: state.group },
            value: (state.oldestWaitingMs as number) / 1000,
          })),
    ),
    collector(
      store,
      METRIC_NAMES.deadLetters,
      'Dead letters stored at rest per dead-letter type (from inspect()).',
      'gauge',
      () =>
        [...store.inspections].flatMap(([driver, inspection]) =>
          inspection.deadLetters.map((state) => ({
            labels: { driver, type: state.type },
            value: state.count,
          })),
        ),
    ),
  ];
}

/**
 * The store of `registry`: PlugMQ's collectors registered once per registry and shared by every
 * PlugmqMetrics on it. A foreign metric already holding one of the names is a clear error.
 */
export function storeFor(registry: Registry, buckets: readonly number[]): MetricsStore {
  const existing = registry.getSingleMetric(METRIC_NAMES.published) as unknown as
    | Partial<Collector>
    | undefined;
  if (existing?.plugmqStore) return existing.plugmqStore;
  const store = new MetricsStore([...buckets].sort((a, b) => a - b));
  const n = METRIC_NAMES;
  const collectors = [
    collector(store, n.published, 'Messages published (broker-confirmed).', 'counter', () =>
      [...store.typeRows()].map((row) => ({ labels: row.labels, value: row.published })),
    ),
    collector(store, n.unrouted, 'Messages published to a type no group receives.', 'counter', () =>
      [...store.typeRows()]
        .filter((row) => row.unrouted > 0)
        .map((row) => ({ labels: row.labels, value: row.unrouted })),
    ),
    collector(
      store,
      n.handled,
      'Handler runs, by outcome (acked or failed).',
      'counter',
      perGroup(store, (row) => [
        { labels: { ...row.labels, outcome: 'acked' }, value: row.acked },
        { labels: { ...row.labels, outcome: 'failed' }, value: row.failed },
      ]),
    ),
    collector(
      store,
      n.retried,
      'Failed deliveries scheduled for another attempt.',
      'counter',
      perGroup(store, (row) => [{ labels: row.labels, value: row.retried }]),
    ),
    collector(
      store,
      n.deadLettered,
      'Messages moved to a dead-letter type.',
      'counter',
      perGroup(store, (row) =>
        [...row.deadLettered].map(([deadLetter, value]) => ({
          labels: { ...row.labels, dead_letter_type: deadLetter },
          value,
        })),
      ),
    ),
    collector(
      store,
      n.dropped,
      'Exhausted messages dropped (deadLetter: false).',
      'counter',
      perGroup(store, (row) => (row.dropped > 0 ? [{ labels: row.labels, value: row.dropped }] : [])),
    ),
    collector(
      store,
      n.duration,
      'Handler run time in seconds.',
      'histogram',
      perGroup(store, (row) => [
        ...(row.ackedSeconds.count > 0
          ? histogramValues(n.duration, store.buckets, { ...row.labels, outcome: 'acked' }, row.ackedSeconds)
          : []),
        ...(row.failedSeconds.count > 0
          ? histogramValues(
              n.duration,
              store.buckets,
              { ...row.labels, outcome: 'failed' },
              row.failedSeconds,
            )
          : []),
      ]),
    ),
    collector(
      store,
      n.inFlight,
      'Handlers running now.',
      'gauge',
      perGroup(store, (row) => [{ labels: row.labels, value: row.inFlight }]),
    ),
    ...inspectionCollectors(store),
  ];
  for (const metric of collectors)
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  return store;
}
