import { inspect } from 'node:util';
import { createQueueManager, type PlugmqError, registerDriver } from '@plugmq/core';
import { describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';
import type { RedisConfig } from '../src/options.js';

registerDriver(driver);

const SECRET = 's3cret-Sentinel-pw';

function refused(config: Record<string, unknown>): PlugmqError {
  try {
    driver.validate({ driver: 'redis', ...config });
  } catch (error) {
    return error as PlugmqError;
  }
  throw new Error(`expected CONFIG_INVALID for ${JSON.stringify(config)}`);
}

const validate = (config: Record<string, unknown>) =>
  driver.validate({ driver: 'redis', ...config }) as RedisConfig;

describe('Sentinel and waitForReplicas options: CONFIG_INVALID names the field, never a password', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['url', { url: `redis+sentinel://u:${SECRET}@a:26379` }],
    ['url', { url: `redis+sentinel://u:${SECRET}@a:26379/` }],
    ['url', { url: `redis+sentinel://u:${SECRET}@a:26379,,b/m` }],
    ['url', { url: `redis+sentinel://u:${SECRET}@a:99999/m` }],
    ['url', { url: `redis+sentinel://u:${SECRET}@a:1/has space` }],
    ['sentinels', { sentinels: [] }],
    ['sentinels', { sentinels: 'a:26379', sentinelName: 'm' }],
    ['sentinels', { sentinels: [{ host: '', port: 1 }], sentinelName: 'm' }],
    ['sentinels', { sentinels: [{ host: 'a', port: '26379' }], sentinelName: 'm' }],
    ['sentinels', { sentinels: [{ host: 'a', port: 0 }], sentinelName: 'm' }],
    ['sentinels', { sentinelName: 'm' }],
    ['sentinels', { url: `redis+sentinel://u:${SECRET}@a/m`, sentinels: [{ host: 'a' }] }],
    ['sentinelName', { sentinels: [{ host: 'a', port: 26379 }] }],
    ['sentinelName', { sentinels: [{ host: 'a' }], sentinelName: 'bad name' }],
    ['sentinelName', { sentinels: [{ host: 'a' }], sentinelName: 7 }],
    ['sentinelName', { url: `redis+sentinel://u:${SECRET}@a/m1`, sentinelName: 'm2' }],
    ['url', { url: `redis://u:${SECRET}@a:1,b:2`, sentinels: [{ host: 'a' }], sentinelName: 'm' }],
    ['cluster', { url: `redis+sentinel://u:${SECRET}@a/m`, cluster: true }],
    ['tls', { url: `redis+sentinel://u:${SECRET}@a/m`, tls: {} }],
    ['tls', { url: `rediss://u:${SECRET}@a`, sentinels: [{ host: 'a' }], sentinelName: 'm' }],
    ['sentinelPassword', { url: 'redis+sentinel://a/m', sentinelPassword: '' }],
    ['sentinelPassword', { url: 'redis+sentinel://a/m', sentinelPassword: 42 }],
    ['sentinelPassword', { url: 'redis://a', sentinelPassword: SECRET }],
    ['waitForReplicas', { waitForReplicas: -1 }],
    ['waitForReplicas', { waitForReplicas: 1.5 }],
    ['waitForReplicas', { waitForReplicas: '1' }],
    ['waitForReplicasTimeoutMs', { waitForReplicasTimeoutMs: 0 }],
    ['waitForReplicasTimeoutMs', { waitForReplicasTimeoutMs: 'soon' }],
  ];
  for (const [field, config] of bad) {
    test(`${field}: ${JSON.stringify(config).replaceAll(SECRET, '***')}`, () => {
      const error = refused(config);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain(field);
      expect(`${error.message} ${inspect(error)}`).not.toContain(SECRET);
    });
  }

  test('defaults: no Sentinel, publishes do not wait for replicas', () => {
    const config = validate({});
    expect(config.sentinel).toBeUndefined();
    expect(config.waitForReplicas).toBe(0);
    expect(config.waitForReplicasTimeoutMs).toBe(1_000);
    expect(validate({ waitForReplicas: 2, waitForReplicasTimeoutMs: 250 })).toMatchObject({
      waitForReplicas: 2,
      waitForReplicasTimeoutMs: 250,
    });
  });

  test('the URL form: Sentinels (26379 by default, IPv6), master name, decoded credentials', () => {
    const config = validate({ url: 'redis+sentinel://app:p%40ss@s1:26380,s2,[::1]:26381/orders-master' });
    expect(config.sentinel).toEqual({
      sentinels: [
        { host: 's1', port: 26_380 },
        { host: 's2', port: 26_379 },
        { host: '::1', port: 26_381 },
      ],
      name: 'orders-master',
      username: 'app',
      password: 'p@ss',
    });
    expect(validate({ url: 'redis+sentinel://s1/m', sentinelName: 'm' }).sentinel?.name).toBe('m');
  });

  test('the ioredis form: sentinels + sentinelName; a plain url lends only its credentials', () => {
    const bare = validate({ sentinels: [{ host: 's1', port: 26_379 }, { host: 's2' }], sentinelName: 'm' });
    expect(bare.sentinel).toEqual({
      sentinels: [
        { host: 's1', port: 26_379 },
        { host: 's2', port: 26_379 },
      ],
      name: 'm',
    });
    const withLogin = validate({
      url: `redis://:${SECRET}@ignored`,
      sentinels: [{ host: 's1' }],
      sentinelName: 'm',
    });
    expect(withLogin.sentinel?.password).toBe(SECRET);
  });

  test('validating a validated config gives it back (core validates again on create)', () => {
    for (const config of [
      { url: `redis+sentinel://u:${SECRET}@s1,s2:26380/m`, waitForReplicas: 1 },
      { url: `redis://:${SECRET}@ignored`, sentinels: [{ host: 's1' }], sentinelName: 'm' },
      { sentinels: [{ host: 's1' }], sentinelName: 'm', sentinelPassword: SECRET },
    ]) {
      const once = validate(config);
      expect(validate(once)).toEqual(once);
    }
  });

  test('the validated config never shows a password (inspect, JSON)', () => {
    const config = validate({ url: `redis+sentinel://u:${SECRET}@s1/m`, sentinelPassword: `${SECRET}-2` });
    expect(inspect(config, { depth: 5 })).not.toContain(SECRET);
    expect(JSON.stringify(config)).not.toContain(SECRET);
  });

  test('Sentinels that never answer: create() fails with CONNECTION, without the password', async () => {
    let error: PlugmqError | undefined;
    try {
      await createQueueManager({
        driver: 'redis',
        url: `redis+sentinel://u:${SECRET}@127.0.0.1:1/m`,
        connectTimeoutMs: 1_000,
      });
    } catch (caught) {
      error = caught as PlugmqError;
    }
    expect(error?.code).toBe('CONNECTION');
    expect(error?.message).toContain('"m"');
    expect(`${error?.message} ${inspect(error)}`).not.toContain(SECRET);
  });
});
