import { describe, expect, it } from 'vitest';
import { createDriverManager } from '../src/define-driver.js';
import {
  type DeliverFn,
  type Delivery,
  defineTransportDriver,
  type Envelope,
  type PlugmqConfig,
  silentLogger,
} from '../src/kit.js';
import { testCapabilities } from './helpers.js';

/** A transport that hands `deliver` to the test, so the test plays the driver. */
function capturingDriver(onSubscribe: (deliver: DeliverFn) => void, onStop: () => Promise<void>) {
  return defineTransportDriver<PlugmqConfig>({
    name: 'capturing',
    capabilities: testCapabilities,
    validate: (config) => config,
    createTransport: async () => ({
      capabilities: testCapabilities,
      publish: () => {},
      subscribe: async (_request, deliver) => {
        onSubscribe(deliver);
        return { stop: onStop };
      },
      health: async () => ({ ok: true }),
      close: async () => {},
    }),
  });
}

const envelope = (id: string, body = '{}'): Envelope => ({
  id,
  type: 'orders',
  timestamp: 0,
  headers: {},
  contentType: 'application/json',
  body: Buffer.from(body),
  attempt: 1,
});

/** Every way of settling fails: synchronously, or by rejecting. */
function failingDelivery(id: string, how: 'throw' | 'reject', body?: string): Delivery {
  const fail = () => {
    if (how === 'throw') throw new Error(`${id}: settle failed`);
    return Promise.reject(new Error(`${id}: settle failed`));
  };
  return { envelope: envelope(id, body), ack: fail, retry: fail, release: fail };
}

describe('DeliverFn', () => {
  // Drivers rely on this: they call deliver without a .catch on the hot path.
  it('never rejects: not when the handler throws, the body does not decode, or every settle fails', async () => {
    let deliver: DeliverFn | undefined;
    let late: Promise<PromiseSettledResult<void>[]> | undefined;
    const manager = await createDriverManager(
      capturingDriver(
        (fn) => {
          deliver = fn;
        },
        // A message that arrives while the subscription stops: released, not handled.
        async () => {
          late = Promise.allSettled([deliver!(failingDelivery('late', 'reject'))]);
        },
      ),
      { driver: 'capturing' },
      { logger: silentLogger },
    );
    let calls = 0;
    await manager.consume(
      'orders',
      async (message) => {
        calls++;
        if ((message.body as { fail?: boolean }).fail) throw new Error('handler failed');
      },
      { group: 'g', concurrency: 2, retry: { maxAttempts: 1 } },
    );
    expect(deliver).toBeDefined();
    const outcomes = await Promise.allSettled(
      (['throw', 'reject'] as const).flatMap((how) => [
        deliver!(failingDelivery(`ok-${how}`, how)),
        deliver!(failingDelivery(`fails-${how}`, how, '{"fail":true}')),
        deliver!(failingDelivery(`undecodable-${how}`, how, '{not json')),
      ]),
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(Array(6).fill('fulfilled'));
    expect(calls).toBe(4);
    await manager.close();
    expect(late).toBeDefined();
    expect((await late!)[0]?.status).toBe('fulfilled');
    expect(calls).toBe(4);
  });
});

describe('DeliverFn.submit', () => {
  it('runs at most `concurrency` at once, each settled once, and hands back what waits at close', async () => {
    let deliver: DeliverFn | undefined;
    const settled: string[] = [];
    const released: string[] = [];
    const delivery = (id: string): Delivery => ({
      envelope: envelope(id),
      ack: () => {
        settled.push(id);
      },
      retry: () => {
        settled.push(`retry:${id}`);
      },
      release: () => {
        released.push(id);
      },
    });
    const manager = await createDriverManager(
      capturingDriver(
        (fn) => {
          deliver = fn;
        },
        async () => {},
      ),
      { driver: 'capturing' },
      { logger: silentLogger },
    );
    let running = 0;
    let peak = 0;
    const finish: (() => void)[] = [];
    await manager.consume(
      'orders',
      async () => {
        peak = Math.max(peak, ++running);
        await new Promise<void>((resolve) => finish.push(resolve));
        running--;
      },
      { group: 'g', concurrency: 2 },
    );
    for (const id of ['1', '2', '3', '4', '5']) expect(deliver!.submit(delivery(id))).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(running).toBe(2);
    for (const resolve of finish.splice(0)) resolve();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(settled).toEqual(['1', '2']);
    expect(running).toBe(2);
    // Closing: 3 and 4 run to the end, 5 has not started and is handed back.
    const closing = manager.close();
    await new Promise((resolve) => setTimeout(resolve, 10));
    for (const resolve of finish.splice(0)) resolve();
    await closing;
    expect(peak).toBe(2);
    expect(settled).toEqual(['1', '2', '3', '4']);
    expect(released).toEqual(['5']);
  });
});
