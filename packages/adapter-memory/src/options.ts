import { type Capabilities, configInvalid, type PlugmqConfig } from '@plugmq/core';

export const capabilities: Capabilities = Object.freeze({
  persistent: false,
  orderedByKey: true,
  delay: true,
  priority: true,
  newGroupReceivesOldMessages: true,
  requestReply: true,
});

/**
 * Memory driver options (all optional):
 * - `bufferSize` (default 10 000): messages one (type, group) holds before publish waits.
 * - `historySize` (default 10 000): messages kept per type for new groups with startFrom 'earliest'.
 * - `prefetch` (default: the subscription's concurrency): deliveries a subscription holds at once.
 * - `namespace` (default 'default'): managers of one process with the same namespace share a broker.
 * `url` is ignored, so that switching PLUGMQ_DRIVER alone switches drivers.
 */
export interface MemoryConfig extends PlugmqConfig {
  bufferSize: number;
  historySize: number;
  prefetch?: number;
  namespace: string;
}

function integer(
  config: PlugmqConfig,
  field: string,
  fallback: number | undefined,
  min: number,
): number | undefined {
  const value = config[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw configInvalid(field, `an integer >= ${min}`, value);
  }
  return value;
}

export function validateMemoryConfig(config: PlugmqConfig): MemoryConfig {
  const namespace = config.namespace ?? 'default';
  if (typeof namespace !== 'string' || namespace.length === 0) {
    throw configInvalid('namespace', 'a non-empty string', namespace);
  }
  const prefetch = integer(config, 'prefetch', undefined, 1);
  return {
    ...config,
    bufferSize: integer(config, 'bufferSize', 10_000, 1)!,
    historySize: integer(config, 'historySize', 10_000, 0)!,
    ...(prefetch === undefined ? {} : { prefetch }),
    namespace,
  };
}
