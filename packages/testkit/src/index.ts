export * from './conformance/index.js';
export * from './brokers/index.js';
