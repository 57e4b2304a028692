export {
  createPlugmqMetrics,
  DEFAULT_DURATION_BUCKETS,
  METRIC_NAMES,
  PlugmqMetrics,
  type PlugmqMetricsOptions,
} from './metrics.js';
