import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { getContainerRuntimeClient } from 'testcontainers';
import { afterEach, expect, it } from 'vitest';
import {
  describeWithBroker,
  LOCAL_IMAGES,
  OFFICIAL_IMAGES,
  probeBroker,
  startBroker,
} from '../src/brokers/index.js';

/** Containers this test process started (the testkit names them plugmq-<kind>-<pid>-…). */
async function ourContainers(): Promise<string[]> {
  try {
    const client = await getContainerRuntimeClient();
    const all = await client.container.list();
    return all
      .flatMap((c) => c.Names)
      .filter((n) => n.replace(/^\//, '').startsWith(`plugmq-redis-${process.pid}-`));
  } catch {
    return []; // no engine: nothing could have been started in one either
  }
}

const saved = process.env.PLUGMQ_REDIS_URL;
afterEach(() => {
  if (saved === undefined) delete process.env.PLUGMQ_REDIS_URL;
  else process.env.PLUGMQ_REDIS_URL = saved;
});

// "The user's broker" is one the testkit starts here, then names through PLUGMQ_REDIS_URL.
await describeWithBroker(
  'redis',
  'PLUGMQ_REDIS_URL',
  (userBroker) => {
    it('uses the broker from PLUGMQ_REDIS_URL and starts no container', async () => {
      process.env.PLUGMQ_REDIS_URL = userBroker().url;
      const before = await ourContainers();
      const broker = await startBroker('redis');
      expect(broker.source).toBe('env');
      expect(broker.url).toBe(userBroker().url);
      expect(await ourContainers()).toEqual(before);

      // It really is that server: a key written through one handle is read through the other.
      const redis = new Redis(broker.url, { lazyConnect: true });
      await redis.connect();
      await redis.set('plugmq:env-test', String(process.pid));
      redis.disconnect();

      // Not ours: stop() leaves it running, and fault injection refuses with the reason.
      await broker.stop();
      await expect(probeBroker('redis', userBroker().url)).resolves.toBeUndefined();
      await expect(broker.restart()).rejects.toThrow(/PLUGMQ_REDIS_URL/);
      await expect(broker.kill()).rejects.toThrow(/did not start it/);
    });

    it('fails fast, naming the URL, when the broker from the environment does not answer', async () => {
      process.env.PLUGMQ_REDIS_URL = 'redis://127.0.0.1:1';
      await expect(startBroker('redis', { startupTimeoutMs: 1_000 })).rejects.toThrow(/127\.0\.0\.1:1/);
    });
  },
  { source: ['container', 'process'] },
);

it('the testkit image names match tools/brokers/versions.env', () => {
  const env = Object.fromEntries(
    readFileSync(new URL('../../../tools/brokers/versions.env', import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  );
  for (const kind of ['redis', 'rabbitmq', 'kafka'] as const) {
    expect(LOCAL_IMAGES[kind]).toBe(env[`${kind.toUpperCase()}_LOCAL_IMAGE`]);
    expect(OFFICIAL_IMAGES[kind]).toBe(env[`${kind.toUpperCase()}_OFFICIAL_IMAGE`]);
  }
});
