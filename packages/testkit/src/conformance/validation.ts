import { type ConsumeOptions, PlugmqError, type QueueManager } from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { collector, expectPlugmqError, expectRejection } from './helpers.js';

/** Rejected inputs: the code, and a message that names the field. */
export function validationScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);
  const noop = () => undefined;
  // Deliberately wrong values, typed loosely so they reach the runtime checks.
  const loose = <T>(value: unknown) => value as T;
  const badTypes: unknown[] = [
    '',
    'has space',
    'slash/type',
    'a'.repeat(201),
    'ümlaut',
    'star*',
    42,
    undefined,
  ];

  test('an invalid message type is INVALID_ARGUMENT naming `type` at publish, publishBatch and consume', async () => {
    const manager = await env.create();
    for (const type of badTypes) {
      await expectPlugmqError(() => manager.publish(loose<string>(type), 1), 'INVALID_ARGUMENT', 'type');
      await expectPlugmqError(
        () =>
          manager.publishBatch([
            { type: env.type(), body: 1 },
            { type: loose<string>(type), body: 2 },
          ]),
        'INVALID_ARGUMENT',
        'type',
      );
      await expectPlugmqError(
        () => manager.consume(loose<string>(type), noop, { group: env.group() }),
        'INVALID_ARGUMENT',
        'type',
      );
      await expectPlugmqError(
        () => manager.consume([env.type(), loose<string>(type)], noop, { group: env.group() }),
        'INVALID_ARGUMENT',
        'type',
      );
    }
    await expectPlugmqError(
      () => manager.consume([], noop, { group: env.group() }),
      'INVALID_ARGUMENT',
      'type',
    );
  });

  test('the longest valid type (200 characters of [A-Za-z0-9._-]) is accepted', async () => {
    const manager = await env.create();
    const type = `${env.type('long')}._-`.padEnd(200, 'x');
    expect(type).toHaveLength(200);
    const got = collector<string>();
    await manager.consume(type, got.handler, { group: env.group() });
    await manager.publish(type, 'long');
    const [message] = await got.waitForCount(1, env.patience);
    expect(message?.type).toBe(type);
  });

  test('consume without a non-empty group is INVALID_ARGUMENT naming `group`', async () => {
    const manager = await env.create();
    const type = env.type();
    for (const options of [undefined, {}, { group: '' }, { group: 7 }]) {
      await expectPlugmqError(
        () => manager.consume(type, noop, loose<ConsumeOptions>(options)),
        'INVALID_ARGUMENT',
        'group',
      );
    }
  });

  test('a concurrency that is not a positive integer is INVALID_ARGUMENT naming `concurrency`', async () => {
    const manager = await env.create();
    for (const concurrency of [0, -1, 1.5, Number.NaN, '2']) {
      await expectPlugmqError(
        () =>
          manager.consume(env.type(), noop, { group: env.group(), concurrency: loose<number>(concurrency) }),
        'INVALID_ARGUMENT',
        'concurrency',
      );
    }
  });

  test('retry numbers that are not positive integers are INVALID_ARGUMENT naming the field', async () => {
    const manager = await env.create();
    const cases: [string, unknown][] = [
      ['maxAttempts', 0],
      ['maxAttempts', -1],
      ['maxAttempts', 2.5],
      ['maxAttempts', '3'],
      ['initialDelayMs', -5],
      ['initialDelayMs', 1.5],
      ['maxDelayMs', -1],
    ];
    for (const [field, value] of cases) {
      await expectPlugmqError(
        () =>
          manager.consume(env.type(), noop, {
            group: env.group(),
            retry: loose<ConsumeOptions['retry']>({ [field]: value }),
          }),
        'INVALID_ARGUMENT',
        field,
      );
    }
  });

  test('priority outside the integers 0–9 is INVALID_ARGUMENT naming `priority`', async () => {
    const manager = await env.create();
    // A driver without priority may refuse any priority with UNSUPPORTED first.
    const codes = env.capabilities.priority
      ? (['INVALID_ARGUMENT'] as const)
      : (['INVALID_ARGUMENT', 'UNSUPPORTED'] as const);
    for (const priority of [10, -1, 1.5, Number.NaN]) {
      await expectPlugmqError(() => manager.publish(env.type(), 1, { priority }), codes, 'priority');
    }
  });

  test('delayMs that is not an integer >= 0 is INVALID_ARGUMENT naming `delayMs`', async () => {
    const manager = await env.create();
    const codes = env.capabilities.delay
      ? (['INVALID_ARGUMENT'] as const)
      : (['INVALID_ARGUMENT', 'UNSUPPORTED'] as const);
    for (const delayMs of [-1, 1.5, Number.POSITIVE_INFINITY]) {
      await expectPlugmqError(() => manager.publish(env.type(), 1, { delayMs }), codes, 'delayMs');
    }
  });

  test('an unknown startFrom is INVALID_ARGUMENT naming `startFrom`', async () => {
    const manager = await env.create();
    await expectPlugmqError(
      () =>
        manager.consume(env.type(), noop, {
          group: env.group(),
          startFrom: loose<'latest'>('middle'),
        }),
      'INVALID_ARGUMENT',
      'startFrom',
    );
  });

  test('failures are PlugmqError instances from @plugmq/core with a code', async () => {
    const manager = await env.create();
    const error = await expectPlugmqError(() => manager.publish('bad type', 1), 'INVALID_ARGUMENT');
    expect(error).toBeInstanceOf(PlugmqError);
    expect(error.name).toBe('PlugmqError');
  });

  test('publish with an already aborted signal rejects', async () => {
    const manager = await env.create();
    const controller = new AbortController();
    controller.abort(new Error('caller gave up'));
    const error = await expectRejection(
      () => manager.publish(env.type(), 'never', { signal: controller.signal }),
      'publish with an aborted signal',
    );
    expect(error).toBeInstanceOf(Error);
  });

  test('after close(): publish, publishBatch, consume, request and respond reject with CLOSED; close() again is fine', async () => {
    const manager = await env.create();
    const type = env.type();
    await manager.consume(type, noop, { group: env.group() });
    await manager.close();
    await manager.close();
    await Promise.all([manager.close(), manager.close()]);
    await expectPlugmqError(() => manager.publish(type, 1), 'CLOSED');
    await expectPlugmqError(() => manager.publishBatch([{ type, body: 1 }]), 'CLOSED');
    await expectPlugmqError(() => manager.consume(type, noop, { group: env.group() }), 'CLOSED');
    await expectPlugmqError(() => manager.request(type, 1, { timeoutMs: 200 }), 'CLOSED');
    await expectPlugmqError(() => manager.respond(type, noop), 'CLOSED');
  });

  test('the Promise-returning methods reject rather than throw synchronously (invalid input, closed manager)', async () => {
    const manager = await env.create();
    const calls: [string, (m: QueueManager) => unknown][] = [
      ['publish', (m) => m.publish('bad type', 1)],
      ['publishBatch', (m) => m.publishBatch([{ type: 'bad type', body: 1 }])],
      ['consume', (m) => m.consume('bad type', noop, { group: env.group() })],
      ['request', (m) => m.request('bad type', 1, { timeoutMs: 200 })],
      ['respond', (m) => m.respond('bad type', noop)],
    ];
    for (const [name, call] of calls)
      await expectRejection(() => call(manager), `${name} with an invalid type`);
    await manager.close();
    for (const [name, call] of calls) await expectRejection(() => call(manager), `${name} after close()`);
  });
}
