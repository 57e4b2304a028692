import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DriverDefinition } from './driver.js';
import { PlugmqError } from './errors.js';
import { nearest } from './suggest.js';

const drivers = new Map<string, DriverDefinition>();
const DRIVER_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** Set by the build (tsup.config.ts): true in the CommonJS build; absent when running sources. */
declare const __PLUGMQ_CJS__: boolean | undefined;

/**
 * In core's CommonJS build adapters are `require`d, so that they load core's CommonJS build as
 * well: `import()` would load their ESM build and with it a second copy of core (its own driver
 * registry and error classes).
 */
const commonJs = typeof __PLUGMQ_CJS__ === 'boolean' && __PLUGMQ_CJS__;

function load(from: NodeJS.Require | undefined, specifier: string): Promise<unknown> {
  if (commonJs) return Promise.resolve().then(() => (from ?? require)(specifier));
  return import(specifier);
}

/** Makes a driver available by name: third-party drivers, or to avoid a dynamic import. */
export function registerDriver(driver: DriverDefinition): void {
  if (!isDriverDefinition(driver)) {
    throw new PlugmqError(
      'INVALID_ARGUMENT',
      'driver must be a DriverDefinition made by defineTransportDriver({ name, capabilities, validate, createTransport })',
    );
  }
  if (typeof driver.name !== 'string' || !DRIVER_NAME.test(driver.name)) {
    throw new PlugmqError(
      'INVALID_ARGUMENT',
      `driver.name must match ${DRIVER_NAME} (got ${JSON.stringify(driver.name)})`,
    );
  }
  drivers.set(driver.name, driver);
}

export function registeredDrivers(): string[] {
  return [...drivers.keys()].sort();
}

/** The adapters PlugMQ publishes; `driver: '<name>'` loads `@plugmq/adapter-<name>` on demand. */
const KNOWN_ADAPTERS = ['kafka', 'memory', 'postgres', 'rabbitmq', 'redis'] as const;

function ownRequire(): NodeJS.Require {
  return commonJs ? require : createRequire(import.meta.url);
}

/** Whether `specifier` can be loaded: from core's own location, or from the application's. */
function resolvable(specifier: string): boolean {
  const requires = [() => ownRequire(), () => createRequire(join(process.cwd(), 'package.json'))];
  for (const from of requires) {
    try {
      // package.json, not the entry: resolving the entry needs the package's build output.
      from().resolve(`${specifier}/package.json`);
      return true;
    } catch {
      // not there; try the next place
    }
  }
  return false;
}

/**
 * Every driver name that would work now: registered drivers, and the known adapter packages that
 * are installed but not imported yet.
 */
export function availableDrivers(): string[] {
  const names = new Set(drivers.keys());
  for (const name of KNOWN_ADAPTERS) {
    if (!names.has(name) && resolvable(`@plugmq/adapter-${name}`)) names.add(name);
  }
  return [...names].sort();
}

/** "; did you mean …?; available drivers: …", the end of every DRIVER_NOT_FOUND message. */
function driverChoices(name: string): string {
  const available = availableDrivers();
  const guess = nearest(name, available.length ? available : KNOWN_ADAPTERS);
  const brokers = KNOWN_ADAPTERS.filter((known) => known !== 'memory').map(
    (known) => `@plugmq/adapter-${known}`,
  );
  return (
    (guess ? `; did you mean ${JSON.stringify(guess)}?` : '') +
    (available.length
      ? `; available drivers: ${available.join(', ')}`
      : `; no driver is installed: install @plugmq/adapter-memory or your broker's adapter (${brokers.join(', ')})`)
  );
}

function isDriverDefinition(value: unknown): value is DriverDefinition {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<DriverDefinition>).spec?.createTransport === 'function'
  );
}

function isModuleNotFound(error: unknown, specifier: string): boolean {
  const code = (error as { code?: string } | null)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    String((error as Error).message).includes(specifier)
  );
}

/**
 * The application's own dependencies, when core itself cannot see the adapter (pnpm's isolated
 * layout): resolve from the working directory, then import the adapter's ESM entry.
 */
async function importFromApplication(specifier: string): Promise<unknown> {
  const require = createRequire(join(process.cwd(), 'package.json'));
  if (commonJs) return load(require, specifier);
  const manifestPath = require.resolve(`${specifier}/package.json`);
  const manifest = require(manifestPath) as {
    exports?: { '.'?: { import?: { default?: string } } };
    module?: string;
  };
  const entry = manifest.exports?.['.']?.import?.default ?? manifest.module ?? 'index.js';
  return import(pathToFileURL(join(manifestPath, '..', entry)).href);
}

/** A registered driver, or the installed `@plugmq/adapter-<name>` package's `driver` export. */
export async function resolveDriver(name: unknown): Promise<DriverDefinition> {
  if (typeof name !== 'string' || name.length === 0) {
    throw new PlugmqError(
      'CONFIG_INVALID',
      `driver must be a driver name such as 'memory', 'rabbitmq', 'kafka', 'redis' or 'postgres' (got ${typeof name})`,
    );
  }
  const registered = drivers.get(name);
  if (registered) return registered;
  if (!DRIVER_NAME.test(name)) {
    throw new PlugmqError(
      'DRIVER_NOT_FOUND',
      `driver ${JSON.stringify(name)} is not a valid driver name: use lowercase letters, digits and dashes${driverChoices(name)}`,
    );
  }
  const specifier = `@plugmq/adapter-${name}`;
  let loaded: unknown;
  try {
    loaded = await load(undefined, specifier);
  } catch (error) {
    if (!isModuleNotFound(error, specifier)) {
      throw new PlugmqError(
        'DRIVER_NOT_FOUND',
        `driver ${JSON.stringify(name)}: ${specifier} failed to load`,
        { cause: error },
      );
    }
    try {
      loaded = await importFromApplication(specifier);
    } catch (cause) {
      throw new PlugmqError(
        'DRIVER_NOT_FOUND',
        `driver ${JSON.stringify(name)} is not registered and ${specifier} is not installed: install it (npm i ${specifier}) or call registerDriver()${driverChoices(name)}`,
        { cause },
      );
    }
  }
  const definition =
    (loaded as { driver?: unknown; default?: { driver?: unknown } }).driver ??
    (loaded as { default?: { driver?: unknown } }).default?.driver;
  if (!isDriverDefinition(definition)) {
    throw new PlugmqError('DRIVER_NOT_FOUND', `${specifier} does not export a DriverDefinition named driver`);
  }
  drivers.set(name, definition);
  return definition;
}
