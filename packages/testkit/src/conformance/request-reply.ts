import type { Message } from '@plugmq/core';
import { expect, it, type TestFunction } from 'vitest';
import type { ConformanceEnv } from './env.js';
import { expectPlugmqError } from './helpers.js';

/** Request/reply over the same manager and across managers. */
export function requestReplyScenarios(env: ConformanceEnv): void {
  const test = (name: string, fn: TestFunction) => it(name, fn, env.testTimeout);
  const needs = '[needs capabilities.requestReply]';

  test(`respond then request returns the handler's value ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const manager = await env.create();
    const type = env.type('rpc');
    let seen: Message<{ a: number; b: number }> | undefined;
    const subscription = await manager.respond<{ a: number; b: number }, { sum: number }>(type, (message) => {
      seen = message;
      return { sum: message.body.a + message.body.b };
    });
    expect(subscription.types).toEqual([type]);
    const reply = await manager.request<{ a: number; b: number }, { sum: number }>(
      type,
      { a: 2, b: 3 },
      { timeoutMs: env.patience },
    );
    expect(reply).toEqual({ sum: 5 });
    expect(seen?.body).toEqual({ a: 2, b: 3 });
    expect(seen?.type).toBe(type);
  });

  test(`an async responder's resolved value is the reply; replies may be strings, arrays or null ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const manager = await env.create();
    const type = env.type('rpc');
    await manager.respond<string, unknown>(type, async (message) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (message.body === 'string') return 'pong';
      if (message.body === 'array') return [1, 'two'];
      return null;
    });
    const ask = (body: string) => manager.request<string, unknown>(type, body, { timeoutMs: env.patience });
    expect(await ask('string')).toBe('pong');
    expect(await ask('array')).toEqual([1, 'two']);
    expect(await ask('null')).toBeNull();
  });

  test(`request with no responder rejects TIMEOUT after timeoutMs (300 ms) ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const manager = await env.create();
    const started = Date.now();
    await expectPlugmqError(
      () => manager.request(env.type('nobody'), 'hello?', { timeoutMs: 300 }),
      'TIMEOUT',
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(300 + env.ms(3_000));
  });

  test(`a responder that throws makes request reject with the thrown message ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const manager = await env.create();
    const type = env.type('rpc');
    await manager.respond(type, () => {
      throw new Error('responder refused: out of stock');
    });
    let failure: unknown;
    try {
      await manager.request(type, 'order', { timeoutMs: env.patience });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toContain('responder refused: out of stock');
    expect((failure as { code?: string }).code, 'a responder failure is not a timeout').not.toBe('TIMEOUT');
  });

  test(`concurrent requests each get their own reply (correlation) ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const manager = await env.create();
    const type = env.type('rpc');
    await manager.respond<number, number>(type, async (message) => {
      await new Promise((resolve) => setTimeout(resolve, (message.body * 7) % 30));
      return message.body * 10;
    });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        manager.request<number, number>(type, i, { timeoutMs: env.patience }),
      ),
    );
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
  });

  test(`request and respond work across managers on the same broker ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const server = await env.create();
    const client = await env.create();
    const type = env.type('rpc');
    await server.respond<string, string>(type, (message) => message.body.toUpperCase());
    expect(await client.request<string, string>(type, 'shout', { timeoutMs: env.patience })).toBe('SHOUT');
  });

  test(`two responders in one group share requests, each request answered once ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const one = await env.create();
    const two = await env.create();
    const client = await env.create();
    const type = env.type('rpc');
    const group = env.group('responders');
    const answered: string[] = [];
    await one.respond<number, string>(
      type,
      (message) => {
        answered.push(`one:${message.body}`);
        return 'one';
      },
      { group },
    );
    await two.respond<number, string>(
      type,
      (message) => {
        answered.push(`two:${message.body}`);
        return 'two';
      },
      { group },
    );
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        client.request<number, string>(type, i, { timeoutMs: env.patience }),
      ),
    );
    for (const reply of replies) expect(['one', 'two']).toContain(reply);
    expect(answered).toHaveLength(10);
  });

  test(`a closed responder no longer answers: request then times out ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const manager = await env.create();
    const type = env.type('rpc');
    const subscription = await manager.respond<string, string>(type, () => 'here');
    expect(await manager.request(type, 'ping', { timeoutMs: env.patience })).toBe('here');
    await subscription.close();
    await expectPlugmqError(() => manager.request(type, 'ping', { timeoutMs: env.ms(300) }), 'TIMEOUT');
  });
  test(`aborting a request's signal rejects it before timeoutMs ${needs}`, async (ctx) => {
    env.requires(ctx, 'requestReply');
    const manager = await env.create();
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('caller gave up')), env.ms(100));
    let failure: unknown;
    try {
      await manager.request(env.type('nobody'), 'hello?', {
        timeoutMs: env.ms(10_000),
        signal: controller.signal,
      });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(env.ms(5_000));
  });
}
