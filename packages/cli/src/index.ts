export { configFrom, connect } from './connect.js';
export { startDemoWorkload, type Workload, type WorkloadOptions } from './demo-workload.js';
export { buildProgram, runCli, USAGE_EXIT_CODE } from './program.js';
