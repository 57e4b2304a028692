import type { PlugmqConfig } from './config.js';
import type { TransportDriverSpec } from './define-driver.js';
import type { Capabilities } from './types.js';

/**
 * What each adapter package exports as `driver`, made by `defineTransportDriver`: the driver's
 * name, defaults and option check, and its `Transport` factory, which is the one driver seam (core
 * builds every manager around a Transport, so every driver gets the same retries, middleware,
 * events and catalog).
 */
export interface DriverDefinition {
  readonly name: string;
  readonly capabilities: Capabilities;
  /**
   * The driver's own option names (core's `driver`, `url`, timeouts and `logger` need not be
   * listed). When given, createQueueManager refuses any other name with CONFIG_INVALID, so a
   * misspelled option fails at startup instead of being ignored.
   */
  readonly options?: readonly string[];
  /** Returns the config with defaults applied; throws CONFIG_INVALID naming the field. */
  validate(config: PlugmqConfig): PlugmqConfig;
  /** The spec given to defineTransportDriver. */
  readonly spec: TransportDriverSpec<PlugmqConfig>;
}
