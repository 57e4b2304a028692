import type { DriverDeps, PlugmqConfig } from './config.js';
import type { Capabilities, QueueManager } from './types.js';

/** What each adapter package exports as `driver`. */
export interface DriverDefinition {
  readonly name: string;
  readonly capabilities: Capabilities;
  /** Returns the config with defaults applied; throws CONFIG_INVALID naming the field. */
  validate(config: PlugmqConfig): PlugmqConfig;
  create(config: PlugmqConfig, deps: DriverDeps): Promise<QueueManager>;
}
