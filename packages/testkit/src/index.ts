export * from './brokers/index.js';
export * from './clusters/kafka.js';
export * from './conformance/index.js';
export * from './faults/index.js';
