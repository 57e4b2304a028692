import { describe, expect, it } from 'vitest';
import { createDriverManager } from '../src/define-driver.js';
import { defineTransportDriver, type PlugmqConfig, silentLogger } from '../src/kit.js';
import { testCapabilities as defaults, expectPlugmqError } from './helpers.js';

// A driver whose `noPriority` option takes priorities away, as RabbitMQ's quorum queues do.
const driver = defineTransportDriver<PlugmqConfig>({
  name: 'options-shaped',
  capabilities: defaults,
  capabilitiesFor: (config) => ({ ...defaults, priority: config.noPriority !== true }),
  validate: (config) => config,
  createTransport: async () => ({
    capabilities: defaults,
    publish: () => {},
    subscribe: () => Promise.reject(new Error('not used')),
    health: async () => ({ ok: true }),
    close: async () => {},
  }),
});

describe('defineTransportDriver capabilitiesFor', () => {
  it("gives each manager the capabilities of its own options; the driver's stay the defaults", async () => {
    const plain = await createDriverManager(driver, { driver: 'options-shaped' }, { logger: silentLogger });
    const reduced = await createDriverManager(
      driver,
      { driver: 'options-shaped', noPriority: true },
      { logger: silentLogger },
    );
    expect(driver.capabilities.priority).toBe(true);
    expect(plain.capabilities.priority).toBe(true);
    expect(reduced.capabilities.priority).toBe(false);
    await expect(plain.publish('t', 1, { priority: 3 })).resolves.toBeTypeOf('string');
    await expectPlugmqError(() => reduced.publish('t', 1, { priority: 3 }), 'UNSUPPORTED', 'priority');
    await Promise.all([plain.close(), reduced.close()]);
  });
});
