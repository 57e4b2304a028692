import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Consumer,
  ConsumerManager,
  configFromEnv,
  createContainer,
  type Logger,
  type Message,
  type QueueManager,
  redactCredentials,
  registerDriver,
  TYPES,
} from '../src/kit.js';

const toClose: QueueManager[] = [];
beforeAll(() => registerDriver(memoryDriver));
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((m) => m.close()));
});

function recordingLogger(lines: string[]): Logger {
  const log = (level: string) => (fields: unknown, message?: string) => {
    lines.push(`${level} ${typeof fields === 'string' ? fields : `${message} ${JSON.stringify(fields)}`}`);
  };
  return {
    trace: log('trace'),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
  };
}

describe('createContainer', () => {
  it('binds Config, Logger, QueueManager and ConsumerManager as singletons', async () => {
    const config = { driver: 'memory', namespace: 'di-1' };
    const container = await createContainer(config);
    const manager = container.get<QueueManager>(TYPES.QueueManager);
    toClose.push(manager);
    expect(manager.driver).toBe('memory');
    expect(container.get(TYPES.QueueManager)).toBe(manager);
    expect(container.get(TYPES.Config)).toBe(config);
    const consumers = container.get<ConsumerManager>(TYPES.ConsumerManager);
    expect(consumers).toBeInstanceOf(ConsumerManager);
    expect(container.get(TYPES.ConsumerManager)).toBe(consumers);
    expect(typeof container.get<Logger>(TYPES.Logger).info).toBe('function');
  });

  it('logs through whatever TYPES.Logger is bound to now', async () => {
    const container = await createContainer({ driver: 'memory', namespace: 'di-2' });
    const lines: string[] = [];
    await container.unbind(TYPES.Logger);
    container.bind<Logger>(TYPES.Logger).toConstantValue(recordingLogger(lines));
    const manager = container.get<QueueManager>(TYPES.QueueManager);
    toClose.push(manager);
    await manager.publish('di.nobody.listens', { a: 1 });
    expect(lines.some((line) => line.startsWith('warn') && line.includes('unrouted'))).toBe(true);
  });
});

describe('ConsumerManager', () => {
  it('starts every registered consumer, and stopAll drains in-flight handlers', async () => {
    const container = await createContainer({ driver: 'memory', namespace: 'cm-1' });
    const queue = container.get<QueueManager>(TYPES.QueueManager);
    toClose.push(queue);
    const consumers = container.get<ConsumerManager>(TYPES.ConsumerManager);
    const handled: string[] = [];
    let finishedSlowHandler = false;
    const orders: Consumer<{ n: number }> = {
      types: ['cm.orders'],
      group: 'billing',
      async handle(message: Message<{ n: number }>) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        handled.push(`orders:${message.body.n}`);
        finishedSlowHandler = true;
      },
    };
    const audit: Consumer = {
      types: ['cm.orders', 'cm.refunds'],
      group: 'audit',
      options: { concurrency: 2 },
      async handle(message) {
        handled.push(`audit:${message.type}`);
      },
    };
    consumers.register(orders as Consumer).register(audit);
    await consumers.startAll();
    await queue.publish('cm.orders', { n: 1 });
    await queue.publish('cm.refunds', { n: 2 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await consumers.stopAll();
    expect(finishedSlowHandler).toBe(true);
    expect(handled.sort()).toEqual(['audit:cm.orders', 'audit:cm.refunds', 'orders:1']);
  });

  it('startAll is all or nothing: one bad consumer leaves none running', async () => {
    const container = await createContainer({ driver: 'memory', namespace: 'cm-2' });
    const queue = container.get<QueueManager>(TYPES.QueueManager);
    toClose.push(queue);
    const consumers = new ConsumerManager(queue);
    let calls = 0;
    consumers.register({ types: ['cm.good'], group: 'g', handle: async () => void calls++ });
    consumers.register({ types: ['cm.bad type'], group: 'g', handle: async () => {} });
    await expect(consumers.startAll()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await queue.publish('cm.good', 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toBe(0);
    expect((await queue.health()).details?.subscriptions).toBe(0);
  });

  it('rejects a consumer without handle()', () => {
    const consumers = new ConsumerManager({} as QueueManager);
    expect(() => consumers.register({ types: ['x'], group: 'g' } as never)).toThrowError(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('configuration from the environment', () => {
  it('reads the driver, the URL and camelCased options, converting numbers and booleans', () => {
    expect(
      configFromEnv({
        PLUGMQ_DRIVER: 'rabbitmq',
        PLUGMQ_URL: 'amqp://u:p@h:5672',
        PLUGMQ_PUBLISH_TIMEOUT_MS: '5000',
        PLUGMQ_EXCHANGE: 'events',
        PLUGMQ_SERIALIZE: 'false',
        PLUGMQ_RABBITMQ_URL: 'amqp://test-broker',
        HOME: '/root',
      }),
    ).toEqual({
      driver: 'rabbitmq',
      url: 'amqp://u:p@h:5672',
      publishTimeoutMs: 5000,
      exchange: 'events',
      serialize: false,
    });
  });

  it('defaults to the memory driver', () => {
    expect(configFromEnv({})).toEqual({ driver: 'memory' });
  });
});

describe('credentials', () => {
  it('are masked in URLs', () => {
    expect(redactCredentials('amqp://guest:s3cret@127.0.0.1:5672/vhost')).toBe(
      'amqp://guest:***@127.0.0.1:5672/vhost',
    );
    expect(redactCredentials('redis://:pw@localhost:6379')).toBe('redis://:***@localhost:6379');
    expect(redactCredentials('kafka://broker:9092')).toBe('kafka://broker:9092');
    expect(redactCredentials('amqp://a:x@h1,amqp://b:y@h2')).not.toMatch(/[xy]@/);
  });
});
