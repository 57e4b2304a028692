import { fileURLToPath } from 'node:url';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, runFirstContact, startBroker } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await startBroker('redis');
}, 180_000);
afterAll(() => broker?.stop());

const keyPrefix = `plugmq-first-${process.pid}`;
const connectTimeoutMs = 3_000;
const hostPort = () => new URL(broker?.url ?? 'redis://127.0.0.1:6379').host;

runFirstContact({
  name: 'redis',
  create: (overrides) => createQueueManager({ driver: 'redis', url: broker?.url, keyPrefix, ...overrides }),
  connect: {
    connectTimeoutMs,
    config: (host, port, credentials) => ({
      driver: 'redis',
      url: credentials
        ? `redis://${credentials.user}:${credentials.password}@${host}:${port}`
        : `redis://${host}:${port}`,
      connectTimeoutMs,
    }),
    // A user of its own (ACL SETUSER) whose password the test then gets wrong: WRONGPASS.
    async refusedLogin() {
      const admin = new Redis(broker?.url ?? '', { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await admin.connect();
        await admin.call('ACL', 'SETUSER', 'plugmq-first', 'on', '>right-pw-1', '~*', '&*', '+@all');
      } finally {
        admin.disconnect();
      }
      const password = 'wr0ng-pw-1';
      return {
        password,
        config: { driver: 'redis', url: `redis://plugmq-first:${password}@${hostPort()}`, connectTimeoutMs },
      };
    },
    tlsMismatch: () => ({ driver: 'redis', url: `rediss://${hostPort()}`, connectTimeoutMs }),
    child: {
      driverModule: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
      coreEntry: fileURLToPath(new URL('../../core/src/index.ts', import.meta.url)),
    },
  },
});
