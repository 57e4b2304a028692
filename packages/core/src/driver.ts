import type { DriverDeps, PlugmqConfig } from './config.js';
import type { Capabilities, QueueManager } from './types.js';

/** What each adapter package exports as `driver`. */
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
  create(config: PlugmqConfig, deps: DriverDeps): Promise<QueueManager>;
}
