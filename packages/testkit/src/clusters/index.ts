export * from './kafka.js';
export * from './rabbitmq.js';
export * from './redis.js';
export * from './redis-sentinel.js';
export type { ClusterHandle, ClusterKind, ClusterNode, StartClusterOptions } from './types.js';
