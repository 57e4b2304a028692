import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import {
  collector,
  deferred,
  expectPlugmqError,
  recordingLogger,
  sleep,
  uniqueName,
  waitFor,
  withTimeout,
} from './helpers.js';

/** The injection point core's managers expose; absent on a manager not built on core's seam. */
type EnvelopeSender = (
  envelopes: readonly Record<string, unknown>[],
  signal: AbortSignal | undefined,
  what: string,
) => Promise<void> | undefined;

/**
 * Bodies: JSON by default, raw bytes on request, with the same semantics on every driver, so code
 * moved from memory to a broker sees the same values.
 */
export function codecScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);

  test('JSON codec: objects, arrays, strings, numbers, booleans and null round-trip', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector();
    await manager.consume(type, got.handler, { group: env.group() });
    const bodies: unknown[] = [
      { a: 1, nested: { list: [1, 'two', { three: 3 }], empty: {} }, unicode: '日本語 ✓ 😀' },
      [1, 2, 3, { x: null }],
      'just a string',
      '',
      42,
      -3.5,
      0,
      true,
      false,
      null,
    ];
    const ids = bodies.map(() => uniqueName('id'));
    for (const [index, body] of bodies.entries()) {
      await manager.publish(type, body, { key: 'codec', id: ids[index] ?? '' });
    }
    const received = await got.waitForCount(bodies.length, env.patience);
    for (const [index, body] of bodies.entries()) {
      expect(received.find((message) => message.id === ids[index])?.body).toEqual(body);
    }
  });

  test('JSON semantics are the same on every driver: Date → ISO string, undefined fields vanish, class → plain object', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector<Record<string, unknown>>();
    await manager.consume(type, got.handler, { group: env.group() });
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      norm(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    await manager.publish(type, {
      when: new Date(0),
      gone: undefined,
      point: new Point(3, 4),
      list: [1, undefined, 3],
      withToJSON: { toJSON: () => 'custom' },
    });
    const [message] = await got.waitForCount(1, env.patience);
    const body = message?.body ?? {};
    expect(body.when).toBe('1970-01-01T00:00:00.000Z');
    expect('gone' in body, 'an undefined property does not travel').toBe(false);
    expect(body.point).toEqual({ x: 3, y: 4 });
    expect(Object.getPrototypeOf(body.point)).toBe(Object.prototype);
    expect(body.list).toEqual([1, null, 3]);
    expect(body.withToJSON).toBe('custom');
  });

  test('each delivery is its own copy: a handler mutating its body does not change what another group gets, nor does the publisher mutating after publish', async () => {
    const manager = await env.create();
    const type = env.type();
    const gate = deferred();
    const started = deferred();
    env.onCleanup(() => gate.resolve());
    const mutator = collector<{ n: number; tags: string[] }>((message) => {
      message.body.n = 99;
      message.body.tags.push('mutated');
    });
    // The second group is held by a gate message, so the publisher's mutation happens before it
    // handles the real one.
    const observer = collector<{ n: number; tags: string[] } | string>(async (message) => {
      if (message.body === 'gate') {
        started.resolve();
        await gate.promise;
      }
    });
    await manager.consume(type, mutator.handler, { group: env.group('mutator') });
    await manager.consume(type, observer.handler, { group: env.group('observer') });
    await manager.publish(type, 'gate');
    await withTimeout(started.promise, env.patience, 'the gate message to start');
    const body = { n: 1, tags: ['original'] };
    await manager.publish(type, body);
    await mutator.waitForCount(2, env.patience);
    body.n = 2;
    body.tags.push('publisher-mutated');
    gate.resolve();
    const received = await observer.waitForCount(2, env.patience);
    expect(received[1]?.body).toEqual({ n: 1, tags: ['original'] });
  });

  test('raw bytes: a Uint8Array or Buffer body arrives as a Uint8Array with the same bytes', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector<Uint8Array>();
    await manager.consume(type, got.handler, { group: env.group() });
    const bytes = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
    const buffer = Buffer.from('plain bytes, not JSON {', 'utf8');
    const u8Id = await manager.publish(type, bytes);
    const bufId = await manager.publish(type, buffer);
    const received = await got.waitForCount(2, env.patience);
    const u8 = received.find((message) => message.id === u8Id)?.body;
    const buf = received.find((message) => message.id === bufId)?.body;
    expect(u8).toBeInstanceOf(Uint8Array);
    expect(buf).toBeInstanceOf(Uint8Array);
    expect(Array.from(u8 ?? [])).toEqual(Array.from(bytes));
    expect(Buffer.from(buf ?? []).toString('utf8')).toBe('plain bytes, not JSON {');
  });

  test('a body JSON cannot encode (BigInt, circular object, function) is INVALID_ARGUMENT at publish', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector();
    await manager.consume(type, got.handler, { group: env.group() });
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    await expectPlugmqError(() => manager.publish(type, { big: 10n }), 'INVALID_ARGUMENT', 'body');
    await expectPlugmqError(() => manager.publish(type, circular), 'INVALID_ARGUMENT', 'body');
    await expectPlugmqError(() => manager.publish(type, () => 1), 'INVALID_ARGUMENT', 'body');
    await expectPlugmqError(
      () =>
        manager.publishBatch<unknown>([
          { type, body: 'fine' },
          { type, body: 10n },
        ]),
      'INVALID_ARGUMENT',
      'body',
    );
    await got.expectNoMore(0, env.quiet);
  });

  test('a function or symbol value inside a body, which JSON would silently drop, is INVALID_ARGUMENT naming its path', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector();
    await manager.consume(type, got.handler, { group: env.group() });
    await expectPlugmqError(
      () => manager.publish(type, { id: 1, onDone: () => 1 }),
      'INVALID_ARGUMENT',
      'body.onDone is a function',
    );
    await expectPlugmqError(
      () => manager.publish(type, { order: { lines: [1, Symbol('x')] } }),
      'INVALID_ARGUMENT',
      'body.order.lines[1]',
    );
    await expectPlugmqError(
      () => manager.publish(type, { 'odd key': { run() {} } }),
      'INVALID_ARGUMENT',
      'body["odd key"].run',
    );
    await expectPlugmqError(
      () =>
        manager.publishBatch<unknown>([
          { type, body: 'fine' },
          { type, body: { f: () => 1 } },
        ]),
      'INVALID_ARGUMENT',
      'body.f',
    );
    await got.expectNoMore(0, env.quiet);
  });

  test('an undefined body travels as an empty body and arrives as undefined', async () => {
    const manager = await env.create();
    const type = env.type();
    const got = collector();
    await manager.consume(type, got.handler, { group: env.group() });
    const id = await manager.publish(type, undefined);
    const [message] = await got.waitForCount(1, env.patience);
    expect(message?.id).toBe(id);
    expect(message?.body).toBeUndefined();
  });

  test("a body over the driver's size limit is refused up front with INVALID_ARGUMENT naming the limit and its option [needs options.sizeLimit]", async (ctx) => {
    const limit = env.options.sizeLimit;
    if (!limit) return ctx.skip('no options.sizeLimit given for this driver');
    const manager = await env.create(limit.overrides);
    const type = env.type();
    const got = collector<string>();
    await manager.consume(type, got.handler, { group: env.group() });
    const error = await expectPlugmqError(
      () => manager.publish(type, 'x'.repeat(limit.maxBytes + 10)),
      'INVALID_ARGUMENT',
      limit.option,
    );
    expect(error.message).toContain(String(limit.maxBytes));
    // Multi-byte characters count as their UTF-8 bytes, not as string length.
    await expectPlugmqError(
      () => manager.publish(type, 'é'.repeat(Math.ceil(limit.maxBytes / 2) + 10)),
      'INVALID_ARGUMENT',
      limit.option,
    );
    await expectPlugmqError(
      () =>
        manager.publishBatch([
          { type, body: 'small' },
          { type, body: 'y'.repeat(limit.maxBytes + 10) },
        ]),
      'INVALID_ARGUMENT',
      limit.option,
    );
    // Well under the limit (headers and framing count too on some brokers) still goes through.
    const fits = 'z'.repeat(Math.floor(limit.maxBytes / 2));
    await manager.publish(type, fits);
    const received = await got.waitForCount(1, env.patience);
    expect(received[0]?.body).toBe(fits);
    await got.expectNoMore(1, env.quiet);
  });

  test('an undecodable body goes straight to the dead-letter type and the consumer goes on [needs core TransportQueueManager.sendEnvelopes to inject bad bytes]', async (ctx) => {
    const logger = recordingLogger();
    const manager = await env.create({ logger });
    const send = (manager as unknown as { sendEnvelopes?: EnvelopeSender }).sendEnvelopes;
    if (typeof send !== 'function') ctx.skip('the manager has no sendEnvelopes to inject bad bytes');
    const type = env.type();
    const dlqGroup = env.group('dlq');
    const got = collector<string>();
    // The dead-letter copy keeps the undecodable bytes, so no handler can read it there either:
    // its arrival shows as the dead-letter group dropping it (deadLetter: false logs an error).
    const dead = collector();
    await manager.consume(`${type}.dlq`, dead.handler, { group: dlqGroup, deadLetter: false });
    await manager.consume(type, got.handler, { group: env.group(), retry: { maxAttempts: 5 } });
    const badId = uniqueName('bad');
    await send?.call(
      manager,
      [
        {
          id: badId,
          type,
          timestamp: Date.now(),
          headers: { origin: 'test' },
          contentType: 'application/json',
          body: new TextEncoder().encode('{"truncated": '),
          attempt: 1,
        },
      ],
      undefined,
      'conformance: undecodable body',
    );
    await manager.publish(type, 'after');
    await got.waitForCount(1, env.patience);
    await waitFor(
      () => logger.find('error', badId, dlqGroup).length > 0,
      env.patience,
      'the dead-letter group to receive (and, unable to decode it, drop) the message',
    );
    await sleep(env.quiet);
    expect(got.bodies(), 'the handler never saw the undecodable message').toEqual(['after']);
    expect(dead.messages).toHaveLength(0);
  });
}
