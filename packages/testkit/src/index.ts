export * from './brokers/index.js';
export { type CaptureLogger, captureLogger, type UndefinedField } from './capture-logger.js';
export * from './clusters/index.js';
export * from './conformance/index.js';
export { coreAliases } from './core-aliases.js';
export * from './faults/index.js';
export * from './first-contact/index.js';
