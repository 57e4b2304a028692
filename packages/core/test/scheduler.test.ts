import { describe, expect, it } from 'vitest';
import { type Delivery, DeliveryScheduler, type Envelope } from '../src/kit.js';

function delivery(id: string, key?: string): Delivery {
  const envelope = {
    id,
    type: 't',
    key,
    timestamp: 0,
    headers: {},
    contentType: '',
    body: new Uint8Array(),
    attempt: 1,
  };
  return { envelope: envelope as Envelope, ack() {}, retry() {}, release() {} };
}

/** Concurrency 1; the running delivery finishes when `release` is called. */
function oneAtATimeUntilReleased(): { scheduler: DeliveryScheduler; release: () => void } {
  let finish = () => {};
  const scheduler = new DeliveryScheduler(
    1,
    () =>
      new Promise<void>((resolve) => {
        finish = resolve;
      }),
  );
  return { scheduler, release: () => finish() };
}

describe('DeliveryScheduler', () => {
  it('never runs more than `concurrency` at once', async () => {
    let running = 0;
    let peak = 0;
    const scheduler = new DeliveryScheduler(3, async () => {
      peak = Math.max(peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => scheduler.submit(delivery(String(i)))));
    expect(peak).toBe(3);
  });

  it('runs one key at a time, in order, while other keys proceed', async () => {
    const order: string[] = [];
    const scheduler = new DeliveryScheduler(4, async (d) => {
      await new Promise((resolve) => setTimeout(resolve, d.envelope.key === 'a' ? 10 : 1));
      order.push(d.envelope.id);
    });
    const ids = ['a1', 'b1', 'a2', 'b2', 'a3', 'c1'];
    await Promise.all(ids.map((id) => scheduler.submit(delivery(id, id[0]))));
    expect(order.filter((id) => id.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(order.indexOf('c1')).toBeLessThan(order.indexOf('a2'));
  });

  it('enqueue: the same limits and key order as submit, without a promise for the caller', async () => {
    const order: string[] = [];
    let running = 0;
    let peak = 0;
    const scheduler = new DeliveryScheduler(2, async (d) => {
      peak = Math.max(peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, d.envelope.key === 'a' ? 6 : 1));
      order.push(d.envelope.id);
      running--;
    });
    const ids = ['a1', 'a2', 'b1', 'a3', 'b2', 'c1', 'c2'];
    for (const id of ids) expect(scheduler.enqueue(delivery(id, id[0]))).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await scheduler.idle();
    expect([...order].sort()).toEqual([...ids].sort());
    expect(peak).toBe(2);
    expect(order.filter((id) => id.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(order.filter((id) => id.startsWith('b'))).toEqual(['b1', 'b2']);
  });

  it('hands back what was enqueued and has not started', async () => {
    const { scheduler, release } = oneAtATimeUntilReleased();
    scheduler.enqueue(delivery('1'));
    scheduler.enqueue(delivery('2'));
    const third = scheduler.submit(delivery('3'));
    expect(scheduler.takePending().map((d) => d.envelope.id)).toEqual(['2', '3']);
    await third; // a submitted delivery's promise resolves when it is handed back
    release();
    await scheduler.idle();
    expect(scheduler.inFlight).toBe(0);
  });

  it('hands back what has not started', async () => {
    const { scheduler, release } = oneAtATimeUntilReleased();
    const first = scheduler.submit(delivery('1'));
    void scheduler.submit(delivery('2'));
    void scheduler.submit(delivery('3'));
    expect(scheduler.takePending().map((d) => d.envelope.id)).toEqual(['2', '3']);
    release();
    await first;
    await scheduler.idle();
    expect(scheduler.inFlight).toBe(0);
  });
});

describe('DeliveryScheduler.pause', () => {
  it('starts nothing after pause, even when a running delivery finishes', async () => {
    const started: string[] = [];
    let finish = () => {};
    const scheduler = new DeliveryScheduler(1, async (d) => {
      started.push(d.envelope.id);
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    const first = scheduler.submit(delivery('1'));
    void scheduler.submit(delivery('2'));
    scheduler.pause();
    void scheduler.submit(delivery('3'));
    finish();
    await first;
    await scheduler.idle();
    expect(started).toEqual(['1']);
    expect(scheduler.takePending().map((d) => d.envelope.id)).toEqual(['2', '3']);
  });
});
