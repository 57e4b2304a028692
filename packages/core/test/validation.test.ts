import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueueManager, type QueueManager, registerDriver } from '../src/index.js';
import { expectPlugmqError } from './helpers.js';

// Every input CONTRACT.md rejects: the code, and a message that names the field to fix.
let manager: QueueManager;
const handler = async () => {};

beforeAll(async () => {
  registerDriver(memoryDriver);
  manager = await createQueueManager({ driver: 'memory', namespace: 'validation' });
});
afterAll(() => manager.close());

describe('message type', () => {
  it.each([
    ['empty', ''],
    ['a space', 'orders created'],
    ['a slash', 'orders/created'],
    ['non-ASCII', 'bestellung.ä'],
    ['201 characters', 'a'.repeat(201)],
    ['a number', 42],
    ['undefined', undefined],
  ])('publish rejects a type with %s', async (_, type) => {
    await expectPlugmqError(() => manager.publish(type as string, {}), 'INVALID_ARGUMENT', 'type');
  });

  it('accepts the full alphabet and 200 characters', async () => {
    await expect(manager.publish('Orders.v2_created-EU', {})).resolves.toBeTypeOf('string');
    await expect(manager.publish('a'.repeat(200), {})).resolves.toBeTypeOf('string');
  });

  it('consume rejects a bad type, naming its index in a list', async () => {
    await expectPlugmqError(
      () => manager.consume('bad type', handler, { group: 'g' }),
      'INVALID_ARGUMENT',
      'types',
    );
    await expectPlugmqError(
      () => manager.consume(['ok', 'bad type'], handler, { group: 'g' }),
      'INVALID_ARGUMENT',
      'types[1]',
    );
    await expectPlugmqError(() => manager.consume([], handler, { group: 'g' }), 'INVALID_ARGUMENT', 'types');
  });
});

describe('publish options', () => {
  it.each([
    ['delayMs', { delayMs: -1 }],
    ['delayMs', { delayMs: 1.5 }],
    ['delayMs', { delayMs: '10' }],
    ['priority', { priority: 10 }],
    ['priority', { priority: -1 }],
    ['priority', { priority: 2.5 }],
    ['id', { id: '' }],
    ['id', { id: 7 }],
    ['key', { key: 7 }],
    ['headers', { headers: 'x' }],
    ['headers.n', { headers: { n: 1 } }],
    ['mandatory', { mandatory: 'yes' }],
    ['signal', { signal: {} }],
  ])('rejects a bad %s', async (field, options) => {
    await expectPlugmqError(
      () => manager.publish('valid.type', {}, options as never),
      'INVALID_ARGUMENT',
      field,
    );
  });

  it('rejects a body JSON cannot encode when serialising', async () => {
    const serialising = await createQueueManager({
      driver: 'memory',
      namespace: 'validation-json',
      serialize: true,
    });
    try {
      await expectPlugmqError(() => serialising.publish('valid.type', { n: 1n }), 'INVALID_ARGUMENT', 'body');
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await expectPlugmqError(() => serialising.publish('valid.type', circular), 'INVALID_ARGUMENT', 'body');
    } finally {
      await serialising.close();
    }
  });

  it('publishBatch names the item at fault', async () => {
    await expectPlugmqError(
      () =>
        manager.publishBatch([
          { type: 'ok', body: 1 },
          { type: 'bad type', body: 2 },
        ]),
      'INVALID_ARGUMENT',
      'items[1].type',
    );
    await expectPlugmqError(
      () => manager.publishBatch([{ type: 'ok', body: 1, options: { priority: 11 } }]),
      'INVALID_ARGUMENT',
      'items[0].options.priority',
    );
    await expectPlugmqError(() => manager.publishBatch('x' as never), 'INVALID_ARGUMENT', 'items');
  });
});

describe('consume options', () => {
  it.each([
    ['options.group', undefined],
    ['options.group', { group: '' }],
    ['options.group', { group: 5 }],
    ['options.concurrency', { group: 'g', concurrency: 0 }],
    ['options.concurrency', { group: 'g', concurrency: 1.5 }],
    ['options.concurrency', { group: 'g', concurrency: '2' }],
    ['options.retry.maxAttempts', { group: 'g', retry: { maxAttempts: 0 } }],
    ['options.retry.initialDelayMs', { group: 'g', retry: { initialDelayMs: -5 } }],
    ['options.retry.maxDelayMs', { group: 'g', retry: { maxDelayMs: 2.5 } }],
    ['options.retry.factor', { group: 'g', retry: { factor: 0 } }],
    ['options.startFrom', { group: 'g', startFrom: 'beginning' }],
    ['options.deadLetter', { group: 'g', deadLetter: 'no spaces allowed' }],
    ['options.signal', { group: 'g', signal: 'abort' }],
  ])('rejects a bad %s', async (field, options) => {
    await expectPlugmqError(
      () => manager.consume('valid.type', handler, options as never),
      'INVALID_ARGUMENT',
      field,
    );
  });

  it('rejects a handler that is not a function', async () => {
    await expectPlugmqError(
      () => manager.consume('valid.type', 'nope' as never, { group: 'g' }),
      'INVALID_ARGUMENT',
      'handler',
    );
  });

  it('request rejects a bad timeout and a bad type', async () => {
    await expectPlugmqError(
      () => manager.request('valid.type', {}, { timeoutMs: 0 }),
      'INVALID_ARGUMENT',
      'timeoutMs',
    );
    await expectPlugmqError(() => manager.request('bad type', {}), 'INVALID_ARGUMENT', 'type');
  });
});

describe('configuration', () => {
  it.each([
    ['driver', {}],
    ['driver', { driver: '' }],
    ['url', { driver: 'memory', url: 42 }],
    ['publishTimeoutMs', { driver: 'memory', publishTimeoutMs: 0 }],
    ['closeTimeoutMs', { driver: 'memory', closeTimeoutMs: 'soon' }],
    ['bufferSize', { driver: 'memory', bufferSize: 0 }],
    ['historySize', { driver: 'memory', historySize: -1 }],
    ['serialize', { driver: 'memory', serialize: 'yes' }],
    ['logger', { driver: 'memory', logger: { info: () => {} } }],
  ])('createQueueManager rejects a bad %s with CONFIG_INVALID', async (field, config) => {
    await expectPlugmqError(() => createQueueManager(config as never), 'CONFIG_INVALID', field);
  });

  it('an unknown driver is DRIVER_NOT_FOUND naming the package to install', async () => {
    const error = await expectPlugmqError(
      () => createQueueManager({ driver: 'nosuchbroker' }),
      'DRIVER_NOT_FOUND',
      '@plugmq/adapter-nosuchbroker',
    );
    expect(error.message).toContain('registerDriver');
    await expectPlugmqError(() => createQueueManager({ driver: 'Bad Name!' }), 'DRIVER_NOT_FOUND', 'driver');
  });

  it('never repeats a password from a bad URL', async () => {
    await expectPlugmqError(
      () => createQueueManager({ driver: 'memory', url: 7 as never }),
      'CONFIG_INVALID',
      'url',
    );
  });
});
