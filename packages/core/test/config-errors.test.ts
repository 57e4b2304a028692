import { driver as kafkaDriver } from '@plugmq/adapter-kafka';
import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { driver as rabbitmqDriver } from '@plugmq/adapter-rabbitmq';
import { driver as redisDriver } from '@plugmq/adapter-redis';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  availableDrivers,
  configFromEnv,
  createQueueManager,
  type DriverDefinition,
  registerDriver,
} from '../src/index.js';
import { expectPlugmqError } from './helpers.js';

// Mistakes a new user makes in the configuration, and the message that must point at the fix.

describe('an unknown driver', () => {
  // Runs before anything is registered in this file: the adapters are installed (the workspace's
  // dependencies) but not imported, which is where a user starts.
  it('lists every driver the user could name, installed adapters included, and the nearest one', async () => {
    const error = await expectPlugmqError(
      () => createQueueManager({ driver: 'rabitmq' }),
      'DRIVER_NOT_FOUND',
      '@plugmq/adapter-rabitmq',
    );
    expect(error.message).toContain('did you mean "rabbitmq"?');
    expect(error.message).toContain('available drivers: kafka, memory, postgres, rabbitmq, redis');
    expect(availableDrivers()).toEqual(['kafka', 'memory', 'postgres', 'rabbitmq', 'redis']);
    await expectPlugmqError(
      () => createQueueManager({ driver: 'rabbit' }),
      'DRIVER_NOT_FOUND',
      'did you mean "rabbitmq"?',
    );
  });

  it('lists registered third-party drivers beside the adapters', async () => {
    registerDriver({ ...memoryDriver, name: 'acme-bus' } as DriverDefinition);
    const error = await expectPlugmqError(
      () => createQueueManager({ driver: 'acme-buss' }),
      'DRIVER_NOT_FOUND',
      'acme-buss',
    );
    expect(error.message).toContain('did you mean "acme-bus"?');
    expect(error.message).toContain('available drivers: acme-bus, kafka, memory, postgres, rabbitmq, redis');
    await expectPlugmqError(
      () => createQueueManager({ driver: 'Memory' }),
      'DRIVER_NOT_FOUND',
      /did you mean "memory"\?.*available drivers: acme-bus, kafka, memory/,
    );
  });
});

describe('an unknown option', () => {
  const drivers = [memoryDriver, rabbitmqDriver, redisDriver, kafkaDriver];
  beforeAll(() => {
    for (const driver of drivers) registerDriver(driver);
  });

  it.each(
    drivers.map((driver) => [driver.name]),
  )('is CONFIG_INVALID on %s, naming the field, before any connection is tried', async (name) => {
    const error = await expectPlugmqError(
      () => createQueueManager({ driver: name, url: undefined, tlss: {} }),
      'CONFIG_INVALID',
      `unknown option tlss for driver ${name}`,
    );
    // Every driver declares its options; the message lists them so the user can pick.
    expect(error.message).toContain('prefetch');
  });

  it('names the nearest known option', async () => {
    await expectPlugmqError(
      () => createQueueManager({ driver: 'redis', keyPrefx: 'app' }),
      'CONFIG_INVALID',
      'unknown option keyPrefx for driver redis; did you mean keyPrefix?',
    );
    await expectPlugmqError(
      () => createQueueManager({ driver: 'kafka', maxMessagebytes: 1 }),
      'CONFIG_INVALID',
      'did you mean maxMessageBytes?',
    );
    await expectPlugmqError(
      () => createQueueManager({ driver: 'memory', publishTimeout: 5 }),
      'CONFIG_INVALID',
      'did you mean publishTimeoutMs?',
    );
  });

  it('an option of another driver is refused too (it would do nothing here)', async () => {
    await expectPlugmqError(
      () => createQueueManager({ driver: 'memory', exchange: 'events' }),
      'CONFIG_INVALID',
      'unknown option exchange for driver memory',
    );
  });

  it('read from the environment is refused like a typed one, naming the variable', async () => {
    const config = configFromEnv({ PLUGMQ_DRIVER: 'redis', PLUGMQ_KEY_PREFX: 'app' });
    await expectPlugmqError(
      () => createQueueManager(config),
      'CONFIG_INVALID',
      /keyPrefx.*did you mean keyPrefix\?.*PLUGMQ_KEY_PREFX/,
    );
  });

  it("PlugMQ's own tooling variables are not options", async () => {
    const config = configFromEnv({
      PLUGMQ_RUN_ID: 'r1',
      PLUGMQ_PODMAN_SOCKET: '/run/podman.sock',
      PLUGMQ_KAFKA_LIBS: '/cache/kafka',
      PLUGMQ_REDIS_PORT: '6380',
      PLUGMQ_BENCH_PLAIN_BASELINE: '1',
      PLUGMQ_NAMESPACE: 'env-test',
    });
    expect(config).toEqual({ driver: 'memory', namespace: 'env-test' });
    const manager = await createQueueManager(config);
    await manager.close();
  });

  it('a driver that declares no options gets everything, as before', async () => {
    const { options: _options, ...undeclared } = memoryDriver;
    registerDriver({ ...undeclared, name: 'loose' });
    const manager = await createQueueManager({ driver: 'loose', namespace: 'loose', whatever: 1 });
    await manager.close();
  });
});
