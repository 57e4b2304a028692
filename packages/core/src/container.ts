import { Container } from 'inversify';
import type { PlugmqConfig } from './config.js';
import { checkKnownOptions, validateCoreConfig } from './config-loading.js';
import { ConsumerManager } from './consumer-manager.js';
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

/** Finds the driver for `config.driver`, validates its options and connects. */
export async function createQueueManager(config: PlugmqConfig): Promise<QueueManager> {
  validateCoreConfig(config);
  const { logger: _logger, ...options } = config;
  const driver = await resolveDriver(config.driver);
  checkKnownOptions(config, driver.name, driver.options);
  const validated = driver.validate(options as PlugmqConfig);
  return driver.create(validated, { logger: loggerFrom(config) });
}

/**
 * An inversify container with TYPES.Config, TYPES.Logger, TYPES.QueueManager and
 * TYPES.ConsumerManager bound as singletons. Rebinding TYPES.Logger later takes effect for
 * PlugMQ's logs too, since the manager logs through the container's current logger.
 */
export async function createContainer(config: PlugmqConfig): Promise<Container> {
  validateCoreConfig(config);
  const container = new Container({ defaultScope: 'Singleton' });
  container.bind<PlugmqConfig>(TYPES.Config).toConstantValue(config);
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
