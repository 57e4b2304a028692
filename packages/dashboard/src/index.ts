export {
  type DeadLetterRecord,
  DeadLetterStore,
  type DeadLetterStoreOptions,
  type DeadLetterSummary,
} from './dead-letters.js';
export { type FleetGroup, type FleetSnapshot, FleetView } from './fleet.js';
export {
  createHealthProbes,
  type HealthProbeOptions,
  type HealthProbes,
  type ProbeResult,
} from './health.js';
export { createDashboard, type Dashboard, type DashboardOptions } from './server.js';
export { type GroupStats, LiveStats, type TypeStats } from './stats.js';
