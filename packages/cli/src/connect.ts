import {
  configFromEnv,
  createQueueManager,
  type DriverDefinition,
  type Logger,
  type PlugmqConfig,
  type QueueManager,
  registerDriver,
  registeredDrivers,
} from '@plugmq/core';

/** Global options every command accepts. */
export interface ConnectionOptions {
  driver?: string;
  url?: string;
}

/** PLUGMQ_* from the environment, then --driver/--url on top. */
export function configFrom(options: ConnectionOptions, env = process.env): PlugmqConfig {
  const config = configFromEnv(env);
  if (options.driver) config.driver = options.driver;
  if (options.url) config.url = options.url;
  return config;
}

/**
 * Adapters are looked up from the CLI's own dependencies first (so `pnpm plugmq` works from the
 * workspace root and a global install finds adapters installed beside it), then the usual way.
 */
async function registerAdapter(driver: string): Promise<void> {
  if (registeredDrivers().includes(driver) || !/^[a-z0-9-]+$/.test(driver)) return;
  try {
    const module = (await import(`@plugmq/adapter-${driver}`)) as { driver?: DriverDefinition };
    if (module.driver) registerDriver(module.driver);
  } catch {
    // Not beside the CLI: createQueueManager tries the application's install and explains.
  }
}

export async function connect(options: ConnectionOptions, logger?: Logger): Promise<QueueManager> {
  const config = configFrom(options);
  await registerAdapter(config.driver);
  return createQueueManager(logger ? { ...config, logger } : config);
}

/** A console logger for --verbose: structured fields as JSON after the message. */
export const stderrLogger: Logger = (() => {
  const line =
    (level: string) =>
    (fields: Record<string, unknown> | string, message?: string): void => {
      if (typeof fields === 'string') process.stderr.write(`${level} ${fields}\n`);
      else process.stderr.write(`${level} ${message ?? ''} ${JSON.stringify(fields)}\n`);
    };
  return {
    trace: () => {},
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  };
})();

/** Resolves on the first SIGINT/SIGTERM (a second one exits at once). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.once(signal, () => process.exit(130));
      resolve(signal);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
