import { inspect } from 'node:util';
import { createQueueManager, type PlugmqError, registerDriver } from '@plugmq/core';
import { type BrokerHandle, startBroker } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

const SECRET = 's3cret-Redis-pw';

async function failure(promise: Promise<unknown>): Promise<PlugmqError> {
  try {
    await promise;
  } catch (error) {
    return error as PlugmqError;
  }
  throw new Error('expected a rejection');
}

describe('validate: CONFIG_INVALID names the field, never the password', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['url', { url: 'http://x' }],
    ['url', { url: 42 }],
    ['url', { url: `redis://u:${SECRET}@a:1,b:2` }],
    ['keyPrefix', { keyPrefix: 'has space' }],
    ['keyPrefix', { keyPrefix: 'has{brace}' }],
    ['cluster', { cluster: 'yes' }],
    ['prefetch', { prefetch: 0 }],
    ['claimMinIdleMs', { claimMinIdleMs: 1.5 }],
    ['trimIntervalMs', { trimIntervalMs: -1 }],
    ['maxLen', { maxLen: 0 }],
    ['tls', { tls: 'on' }],
  ];
  for (const [field, config] of bad) {
    test(`${field}: ${JSON.stringify(config)}`, () => {
      let error: PlugmqError | undefined;
      try {
        driver.validate({ driver: 'redis', ...config });
      } catch (caught) {
        error = caught as PlugmqError;
      }
      expect(error?.code).toBe('CONFIG_INVALID');
      expect(error?.message).toContain(field === 'url' && typeof config.url === 'number' ? 'url' : field);
      expect(error?.message).not.toContain(SECRET);
    });
  }

  test('defaults', () => {
    const config = driver.validate({ driver: 'redis' });
    expect(config).toMatchObject({
      url: 'redis://127.0.0.1:6379',
      cluster: false,
      keyPrefix: 'plugmq',
      connectTimeoutMs: 5_000,
      claimMinIdleMs: 30_000,
      trimIntervalMs: 30_000,
    });
  });
});

describe('credentials on a server with ACL users', () => {
  let broker: BrokerHandle | undefined;
  let admin: Redis;
  beforeAll(async () => {
    broker = await startBroker('redis', { source: ['container', 'process'] });
    admin = new Redis(broker.url);
    await admin.acl('SETUSER', 'plugmq', 'on', `>${SECRET}`, '~*', '&*', '+@all');
  }, 180_000);
  afterAll(async () => {
    admin?.disconnect();
    await broker?.stop();
  });

  const withUser = (password: string) => {
    const url = new URL(broker?.url as string);
    return `redis://plugmq:${password}@${url.host}`;
  };

  test('a wrong password fails create() with CONNECTION and never shows the password', async () => {
    const error = await failure(
      createQueueManager({ driver: 'redis', url: withUser(`wrong-${SECRET}`), connectTimeoutMs: 2_000 }),
    );
    expect(error.code).toBe('CONNECTION');
    expect(`${error.message} ${String(error.cause ?? '')} ${inspect(error)}`).not.toContain(SECRET);
  });

  test('the right password works; health and inspect show the URL masked', async () => {
    const manager = await createQueueManager({ driver: 'redis', url: withUser(SECRET) });
    const got: unknown[] = [];
    await manager.consume('cred.check', (message) => void got.push(message.body), { group: 'g' });
    await manager.publish('cred.check', 'ok');
    const health = await manager.health();
    expect(health.ok).toBe(true);
    expect(JSON.stringify(health)).not.toContain(SECRET);
    expect(JSON.stringify(health)).toContain('***');
    expect(inspect(manager, { depth: 10 })).not.toContain(SECRET);
    await manager.close();
  });
});
