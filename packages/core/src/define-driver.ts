import type { Codec } from './codec.js';
import type { DriverDeps, PlugmqConfig } from './config.js';
import type { DriverDefinition } from './driver.js';
import { childLogger, type Logger } from './logger.js';
import { createTransportManager, type TransportQueueManager } from './queue-manager.js';
import type { Transport, TransportHooks } from './transport.js';
import type { Capabilities } from './types.js';

export interface TransportDriverSpec<C extends PlugmqConfig> {
  readonly name: string;
  readonly capabilities: Capabilities;
  /** The driver's option names: see DriverDefinition.options. */
  readonly options?: readonly string[];
  /**
   * The capabilities of one manager, where its options change them (e.g. a queue type without
   * priorities); `capabilities` (the driver's defaults) when absent.
   */
  capabilitiesFor?(config: C): Capabilities;
  /** Apply defaults, throw CONFIG_INVALID naming the field. */
  validate(config: PlugmqConfig): C;
  createTransport(config: C, deps: { logger: Logger; hooks: TransportHooks }): Promise<Transport>;
  readonly codecs?: readonly Codec[];
}

/** A DriverDefinition from a Transport factory: what an adapter package exports as `driver`. */
export function defineTransportDriver<C extends PlugmqConfig>(
  spec: TransportDriverSpec<C>,
): DriverDefinition {
  return {
    name: spec.name,
    capabilities: Object.freeze({ ...spec.capabilities }),
    ...(spec.options ? { options: Object.freeze([...spec.options]) } : {}),
    validate: (config) => spec.validate(config),
    // The spec's config type is the driver's own; the manager only ever hands it what validate returned.
    spec: spec as unknown as TransportDriverSpec<PlugmqConfig>,
  };
}

/** Builds the manager of `driver` around its transport: the only way a manager is made. */
export async function createDriverManager(
  driver: DriverDefinition,
  config: PlugmqConfig,
  deps: DriverDeps,
): Promise<TransportQueueManager> {
  const { spec } = driver;
  const validated = spec.validate(config);
  const logger = childLogger(deps.logger, { driver: spec.name });
  return createTransportManager(
    spec.capabilitiesFor?.(validated) ?? spec.capabilities,
    { driver: spec.name, config: validated, logger, ...(spec.codecs ? { codecs: spec.codecs } : {}) },
    (hooks) => spec.createTransport(validated, { logger, hooks }),
  );
}
