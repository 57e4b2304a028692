import { fileURLToPath } from 'node:url';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { runFirstContact } from '@plugmq/testkit';
import { afterAll } from 'vitest';
import { driver } from '../src/index.js';
import { kafkaBroker, TEST_OPTIONS } from './broker.js';

registerDriver(driver);

const broker = await kafkaBroker();
afterAll(() => broker.stop(), 60_000);

const connectTimeoutMs = 4_000;
const hostPort = new URL(broker.url).host;

runFirstContact({
  name: 'kafka',
  timeScale: 3,
  create: (overrides) =>
    createQueueManager({ driver: 'kafka', url: broker.url, ...TEST_OPTIONS, ...overrides }),
  connect: {
    connectTimeoutMs,
    config: (host, port, credentials) => ({
      driver: 'kafka',
      url: `kafka://${credentials ? `${credentials.user}:${credentials.password}@` : ''}${host}:${port}`,
      ...TEST_OPTIONS,
      connectTimeoutMs,
    }),
    // The test broker has no SASL listener: SASL/PLAIN credentials are refused by its answer to
    // the SASL handshake, which is the refusal a user with SASL set up on one side only meets.
    async refusedLogin() {
      const password = 'wr0ng-pw-1';
      return {
        password,
        config: {
          driver: 'kafka',
          url: `kafka://plugmq:${password}@${hostPort}`,
          ...TEST_OPTIONS,
          connectTimeoutMs,
        },
      };
    },
    tlsMismatch: () => ({
      driver: 'kafka',
      url: `kafka+ssl://${hostPort}`,
      ...TEST_OPTIONS,
      connectTimeoutMs,
    }),
    child: {
      driverModule: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
      coreEntry: fileURLToPath(new URL('../../core/src/index.ts', import.meta.url)),
    },
  },
});
