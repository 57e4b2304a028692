import { describe, expect, it } from 'vitest';
import { createDriverManager } from '../src/define-driver.js';
import {
  type Capabilities,
  defineTransportDriver,
  type PlugmqConfig,
  silentLogger,
  type Transport,
} from '../src/kit.js';

const capabilities: Capabilities = {
  persistent: true,
  orderedByKey: false,
  delay: false,
  priority: false,
  newGroupReceivesOldMessages: false,
  requestReply: false,
};

describe('health() per subscription', () => {
  it('names each subscription with its state; notLive lists starting and lost ones', async () => {
    let lost = false;
    let releaseSubscribe: () => void = () => {};
    let holdNext = false;
    const transport: Transport = {
      publish: () => {},
      subscribe: async ({ group }) => {
        if (holdNext) {
          holdNext = false;
          await new Promise<void>((resolve) => {
            releaseSubscribe = resolve;
          });
        }
        return { stop: async () => {}, ...(group === 'b' ? { isLive: () => !lost } : {}) };
      },
      health: async () => ({ ok: true }),
      close: async () => {},
    };
    const driver = defineTransportDriver<PlugmqConfig>({
      name: 'health-seam',
      capabilities,
      validate: (config) => config,
      createTransport: async () => transport,
    });
    const queue = await createDriverManager(driver, { driver: 'health-seam' }, { logger: silentLogger });
    await queue.consume('x', () => {}, { group: 'a', deadLetter: false });
    await queue.consume('y', () => {}, { group: 'b', deadLetter: false });
    let report = await queue.health();
    expect(report.ok).toBe(true);
    expect(report.details?.subscriptionStates).toEqual([
      { group: 'a', types: ['x'], state: 'live' },
      { group: 'b', types: ['y'], state: 'live' },
    ]);
    expect(report.details?.notLive).toEqual([]);

    lost = true;
    holdNext = true;
    const starting = queue.consume('z', () => {}, { group: 'c', deadLetter: false });
    await new Promise((resolve) => setTimeout(resolve, 10));
    report = await queue.health();
    expect(report.details?.notLive).toEqual([
      { group: 'b', types: ['y'], state: 'lost' },
      { group: 'c', types: ['z'], state: 'starting' },
    ]);
    releaseSubscribe();
    await starting;
    await queue.close();
    expect((await queue.health()).details).toEqual({ closed: true });
  });
});
