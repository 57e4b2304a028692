import { Container } from 'inversify';
import { type Catalog, isCatalog } from './catalog.js';
import type { PlugmqConfig } from './config.js';
import { checkKnownOptions, validateCoreConfig } from './config-loading.js';
import { ConsumerManager } from './consumer-manager.js';
import { createDriverManager } from './define-driver.js';
import { PlugmqError } from './errors.js';
import { type LogFn, type Logger, silentLogger } from './logger.js';
import { resolveDriver } from './registry.js';
import type { QueueManager } from './types.js';

/** DI tokens bound by `createContainer`, each a singleton. */
export const TYPES = Object.freeze({
  QueueManager: Symbol.for('plugmq.QueueManager'),
  ConsumerManager: Symbol.for('plugmq.ConsumerManager'),
  Config: Symbol.for('plugmq.Config'),
  Logger: Symbol.for('plugmq.Logger'),
  /** Bound when the config has a `catalog` (from `defineCatalog`). */
  Catalog: Symbol.for('plugmq.Catalog'),
});

function isLogger(value: unknown): value is Logger {
  const logger = value as Logger | null;
  return (
    typeof logger === 'object' &&
    logger !== null &&
    ['trace', 'debug', 'info', 'warn', 'error'].every(
      (level) => typeof logger[level as keyof Logger] === 'function',
    )
  );
}

function loggerFrom(config: PlugmqConfig): Logger {
  if (config.logger === undefined) return silentLogger;
  if (!isLogger(config.logger)) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      'logger must have trace, debug, info, warn and error methods (pino-compatible)',
    );
  }
  return config.logger;
}

function catalogFrom(config: PlugmqConfig): Catalog | undefined {
  if (config.catalog === undefined || isCatalog(config.catalog)) return config.catalog as Catalog | undefined;
  throw new PlugmqError(
    'CONFIG_INVALID',
    `catalog must be a catalog made by defineCatalog({ type: schema, … }) (got ${typeof config.catalog})`,
  );
}

/**
 * Finds the driver for `config.driver`, validates its options and connects. With a `catalog`
 * the manager checks its declared types (`catalog.attach(queue)` gives the typed view).
 */
export async function createQueueManager(config: PlugmqConfig): Promise<QueueManager> {
  validateCoreConfig(config);
  const catalog = catalogFrom(config);
  const { logger: _logger, catalog: _catalog, ...options } = config;
  const driver = await resolveDriver(config.driver);
  checkKnownOptions(config, driver.name, driver.options);
  const validated = driver.validate(options as PlugmqConfig);
  const manager = await createDriverManager(driver, validated, { logger: loggerFrom(config) });
  if (catalog === undefined) return manager;
  try {
    return catalog.attach(manager) as QueueManager;
  } catch (error) {
    await manager.close();
    throw error;
  }
}

/**
 * An inversify container with TYPES.Config, TYPES.Logger, TYPES.QueueManager and
 * TYPES.ConsumerManager bound as singletons, and TYPES.Catalog when the config has a `catalog`. Rebinding TYPES.Logger later takes effect for
 * PlugMQ's logs too, since the manager logs through the container's current logger.
 */
export async function createContainer(config: PlugmqConfig): Promise<Container> {
  validateCoreConfig(config);
  const catalog = catalogFrom(config);
  const container = new Container({ defaultScope: 'Singleton' });
  container.bind<PlugmqConfig>(TYPES.Config).toConstantValue(config);
  if (catalog !== undefined) container.bind<Catalog>(TYPES.Catalog).toConstantValue(catalog);
  container.bind<Logger>(TYPES.Logger).toConstantValue(loggerFrom(config));
  const current = (): Logger => container.get<Logger>(TYPES.Logger);
  const level =
    (name: Exclude<keyof Logger, 'child'>): LogFn =>
    (...args: [Record<string, unknown> | string, string?]) =>
      (current()[name] as (...a: unknown[]) => void)(...args);
  const delegating: Logger = {
    trace: level('trace'),
    debug: level('debug'),
    info: level('info'),
    warn: level('warn'),
    error: level('error'),
  };
  const manager = await createQueueManager({ ...config, logger: delegating });
  container.bind<QueueManager>(TYPES.QueueManager).toConstantValue(manager);
  container
    .bind<ConsumerManager>(TYPES.ConsumerManager)
    .toDynamicValue((context) => new ConsumerManager(context.get<QueueManager>(TYPES.QueueManager)))
    .inSingletonScope();
  return container;
}
