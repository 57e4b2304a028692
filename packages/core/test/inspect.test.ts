import { describe, expect, it } from 'vitest';
import { createDriverManager } from '../src/define-driver.js';
import {
  type Capabilities,
  DEAD_LETTER_GROUP,
  defineTransportDriver,
  type PlugmqConfig,
  silentLogger,
  type Transport,
  type TransportInspectQuery,
} from '../src/kit.js';
import { expectPlugmqError } from './helpers.js';

const capabilities: Capabilities = {
  persistent: true,
  orderedByKey: false,
  delay: false,
  priority: false,
  newGroupReceivesOldMessages: false,
  requestReply: false,
};

/** The driver seam alone (no broker): records what core asks of an inspecting transport. */
function seam(extra: Partial<Transport> = {}) {
  const ensured: [string, string][] = [];
  let failNextEnsure = false;
  const transport: Transport = {
    publish: () => {},
    subscribe: async () => ({ stop: async () => {} }),
    health: async () => ({ ok: true }),
    close: async () => {},
    ensureGroup: async (type, group) => {
      if (failNextEnsure) {
        failNextEnsure = false;
        throw new Error('broker said no');
      }
      ensured.push([type, group]);
    },
    ...extra,
  };
  const driver = defineTransportDriver<PlugmqConfig>({
    name: 'seam',
    capabilities,
    validate: (config) => config,
    createTransport: async () => transport,
  });
  return {
    ensured,
    failEnsureOnce: () => {
      failNextEnsure = true;
    },
    create: () => createDriverManager(driver, { driver: 'seam' }, { logger: silentLogger }),
  };
}

describe('dead-letter groups at subscribe', () => {
  it('creates the reserved group once per dead-letter type and manager, before the transport subscribes', async () => {
    const broker = seam();
    const queue = await broker.create();
    await queue.consume(['a', 'b'], () => {}, { group: 'g' });
    await queue.consume('a', () => {}, { group: 'h' });
    await queue.consume('c', () => {}, { group: 'g', deadLetter: 'custom.dead' });
    await queue.consume('d', () => {}, { group: 'g', deadLetter: false });
    expect(broker.ensured).toEqual([
      ['a.dlq', DEAD_LETTER_GROUP],
      ['b.dlq', DEAD_LETTER_GROUP],
      ['custom.dead', DEAD_LETTER_GROUP],
    ]);
    await queue.close();
  });

  it('a refused ensureGroup fails the consume, and the next consume asks again', async () => {
    const broker = seam();
    const queue = await broker.create();
    broker.failEnsureOnce();
    await expect(queue.consume('a', () => {}, { group: 'g' })).rejects.toThrow('broker said no');
    await queue.consume('a', () => {}, { group: 'g' });
    expect(broker.ensured).toEqual([['a.dlq', DEAD_LETTER_GROUP]]);
    await queue.close();
  });
});

describe('inspect() and deadLetters over the seam', () => {
  it('UNSUPPORTED where the transport has no inspect or peek', async () => {
    const queue = await seam().create();
    await expectPlugmqError(() => queue.inspect(), 'UNSUPPORTED', 'seam');
    await expectPlugmqError(() => queue.deadLetters.browse('a.dlq'), 'UNSUPPORTED', 'peek');
    await expectPlugmqError(() => queue.deadLetters.replay('a.dlq'), 'UNSUPPORTED', 'peek');
    await queue.close();
  });

  it("passes the manager's dead-letter types, leaves the reserved group out of groups and filters by types", async () => {
    const queries: TransportInspectQuery[] = [];
    const group = (type: string, name: string) => ({
      type,
      group: name,
      backlog: 1,
      inFlight: 0,
      oldestWaitingMs: 5,
      consumers: 0,
      retryBacklog: 0,
    });
    const broker = seam({
      inspect: async (query) => {
        queries.push(query);
        return {
          groups: [group('a', 'g'), group('a.dlq', DEAD_LETTER_GROUP), group('z', 'g')],
          deadLetters: [
            { type: 'a.dlq', count: 1, oldestAgeMs: 5 },
            { type: 'z.dlq', count: 2, oldestAgeMs: 9 },
          ],
        };
      },
    });
    const queue = await broker.create();
    await queue.consume('a', () => {}, { group: 'g' });
    const all = await queue.inspect();
    expect(queries[0]).toEqual({ deadLetterTypes: ['a.dlq'] });
    expect(all.driver).toBe('seam');
    expect(all.groups.map((state) => `${state.type}/${state.group}`)).toEqual(['a/g', 'z/g']);
    expect(all.deadLetters.map((state) => state.type)).toEqual(['a.dlq', 'z.dlq']);
    const some = await queue.inspect({ types: ['a', 'a.dlq'], groups: [{ type: 'a', group: 'g' }] });
    expect(queries[1]).toEqual({
      types: ['a', 'a.dlq'],
      groups: [{ type: 'a', group: 'g' }],
      deadLetterTypes: ['a.dlq'],
    });
    expect(some.groups.map((state) => state.type)).toEqual(['a']);
    expect(some.deadLetters.map((state) => state.type)).toEqual(['a.dlq']);
    await expectPlugmqError(() => queue.inspect({ types: ['bad type'] }), 'INVALID_ARGUMENT', 'types[0]');
    await queue.close();
    await expectPlugmqError(() => queue.inspect(), 'CLOSED', 'closed');
    await expectPlugmqError(() => queue.deadLetters.browse('a.dlq'), 'CLOSED', 'closed');
  });
});
