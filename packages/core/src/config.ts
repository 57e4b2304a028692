import type { Logger } from './logger.js';

/**
 * Startup configuration. `driver` picks the driver; `url` and any other fields are the driver's
 * options (each adapter documents its own). Core's own fields:
 * - `publishTimeoutMs` (default 30 000): how long publish waits on back-pressure or an outage.
 * - `closeTimeoutMs` (default 30 000): how long close waits before aborting handlers' signals.
 * - `requestTimeoutMs` (default 30 000): default timeout of `request`.
 */
export interface PlugmqConfig {
  driver: string;
  url?: string;
  publishTimeoutMs?: number;
  closeTimeoutMs?: number;
  requestTimeoutMs?: number;
  [driverOptions: string]: unknown;
}

export interface DriverDeps {
  logger: Logger;
}
