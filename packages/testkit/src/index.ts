export * from './brokers/index.js';
export * from './clusters/redis.js';
export * from './conformance/index.js';
export * from './faults/index.js';
