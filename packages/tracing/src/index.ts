export { instrumentTracing, type TracingOptions } from './tracing.js';
export { w3cTraceContext } from './w3c.js';
