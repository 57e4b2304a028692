import { fileURLToPath } from 'node:url';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { type BrokerHandle, runFirstContact } from '@plugmq/testkit';
import { afterAll, beforeAll } from 'vitest';
import { driver } from '../src/index.js';
import { rabbitBroker } from './broker.js';

registerDriver(driver);

let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await rabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

const exchange = `plugmq-first-${process.pid}`;
const connectTimeoutMs = 3_000;
const brokerUrl = () => new URL(broker?.url ?? 'amqp://guest:guest@127.0.0.1:5672');

runFirstContact({
  name: 'rabbitmq',
  create: (overrides) => createQueueManager({ driver: 'rabbitmq', url: broker?.url, exchange, ...overrides }),
  connect: {
    connectTimeoutMs,
    config: (host, port, credentials) => ({
      driver: 'rabbitmq',
      url: `amqp://${credentials ? `${credentials.user}:${credentials.password}@` : ''}${host}:${port}`,
      connectTimeoutMs,
    }),
    // The broker's own user with a wrong password: RabbitMQ answers 403 ACCESS_REFUSED at once.
    async refusedLogin() {
      const url = brokerUrl();
      const password = 'wr0ng-pw-1';
      url.password = password;
      return { password, config: { driver: 'rabbitmq', url: url.href, connectTimeoutMs } };
    },
    tlsMismatch: () => {
      const url = brokerUrl();
      url.protocol = 'amqps:';
      return { driver: 'rabbitmq', url: url.href, connectTimeoutMs, tls: { rejectUnauthorized: false } };
    },
    child: {
      driverModule: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
      coreEntry: fileURLToPath(new URL('../../core/src/index.ts', import.meta.url)),
    },
  },
});
