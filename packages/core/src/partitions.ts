import type { PlugmqConfig } from './config.js';
import { configInvalid } from './config-loading.js';

/**
 * Ordering by key through partitions, shared by the drivers that offer a `partitions` option
 * (RabbitMQ, Redis): the option's bounds and the key → partition hash. One copy, so two drivers
 * (or two versions of one) always put a key in the same partition.
 */

/** Most partitions a (group, type) may have: each is a queue or stream, read by one consumer at a time. */
export const MAX_PARTITIONS = 256;

/** `partitions` of the config: 0 (none, the default) to MAX_PARTITIONS, an integer. */
export function partitionsOption(config: PlugmqConfig): number {
  const value = config.partitions;
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_PARTITIONS) {
    throw configInvalid(
      'partitions',
      `an integer from 0 (no ordering by key) to ${MAX_PARTITIONS}, the same in every process of the namespace`,
      value,
    );
  }
  return value as number;
}

/**
 * FNV-1a (32 bit) of the key's UTF-8 bytes, modulo N: stable across processes, versions and
 * platforms, cheap, and spreading similar keys ('order-1', 'order-2') evenly, like the murmur2
 * hash Kafka's default partitioner uses for the same job.
 */
export function partitionOfKey(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
