export * from './brokers/index.js';
export * from './clusters/rabbitmq.js';
export type * from './clusters/types.js';
export * from './conformance/index.js';
export * from './faults/index.js';
