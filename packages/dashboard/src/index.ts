export {
  type DeadLetterRecord,
  DeadLetterStore,
  type DeadLetterStoreOptions,
  type DeadLetterSummary,
} from './dead-letters.js';
export { createDashboard, type Dashboard, type DashboardOptions } from './server.js';
export { type GroupStats, LiveStats, type TypeStats } from './stats.js';
