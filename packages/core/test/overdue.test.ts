import { describe, expect, it, vi } from 'vitest';
import { OverdueWatch, OverdueWatched, type PlugmqError } from '../src/kit.js';
import { LazyDeadline } from '../src/signals.js';

class Waiting extends OverdueWatched {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A deadline as the sender leaves it when the transport returns unfinished: started. */
function started(timeoutMs: number): LazyDeadline {
  const deadline = new LazyDeadline(timeoutMs, undefined, 't');
  deadline.start();
  return deadline;
}

describe('LazyDeadline', () => {
  it('counts the deadline from the publish, not from the first look at its signal', async () => {
    const deadline = started(600);
    await sleep(400);
    const lookedAt = Date.now();
    const signal = deadline.signal;
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    // 600 ms from the start, of which 400 had passed: it aborts before another full 600 ms.
    expect(Date.now() - lookedAt).toBeLessThan(550);
    expect((signal.reason as PlugmqError).code).toBe('PUBLISH_FAILED');
    expect((signal.reason as PlugmqError).message).toBe('publish to t did not complete within 600 ms');
    deadline.dispose();
  });

  it('reads no clock for a publish stored at once; a first look at its signal starts it', async () => {
    const deadline = new LazyDeadline(60, undefined, 't');
    await sleep(100);
    const lookedAt = Date.now();
    const signal = deadline.signal;
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    expect(Date.now() - lookedAt).toBeGreaterThanOrEqual(50);
    deadline.dispose();
  });
});

describe('OverdueWatch', () => {
  it('rejects a publish still waiting at its deadline, once, and never one settled before', async () => {
    const expired: Waiting[] = [];
    const watch = new OverdueWatch<Waiting>('publish to t', (item) => expired.push(item), 10);
    const slow = new Waiting(started(60));
    const fast = new Waiting(started(60));
    watch.add(slow);
    watch.add(fast);
    expect(watch.settle(fast)).toBe(true);
    // Polled, not slept: a loaded CI machine ran the watch's 10 ms tick late enough to fail 150 ms.
    await vi.waitFor(() => expect(expired).toHaveLength(1), { timeout: 5_000, interval: 10 });
    await sleep(30);
    expect(expired).toEqual([slow]);
    expect(watch.has(slow)).toBe(false);
    // Settling after expiry reports that it was no longer watched (the caller must not resolve it).
    expect(watch.settle(slow)).toBe(false);
    expect(watch.size).toBe(0);
    watch.close();
  });

  it("does not read a publish's signal (arming its timer) until it has waited a full tick", async () => {
    let reads = 0;
    const context = {
      get signal() {
        reads++;
        return new AbortController().signal;
      },
    };
    const watch = new OverdueWatch<Waiting>('publish to t', () => {}, 40);
    const item = new Waiting(context);
    watch.add(item);
    await sleep(20);
    expect(reads).toBe(0);
    await sleep(100);
    expect(reads).toBe(1);
    watch.settle(item);
    watch.close();
  });

  it('keeps watching the others whichever publish settles first', async () => {
    const expired: Waiting[] = [];
    const watch = new OverdueWatch<Waiting>('publish to t', (item) => expired.push(item), 10);
    const items = Array.from({ length: 5 }, () => new Waiting(started(30)));
    for (const item of items) watch.add(item);
    // Middle, head and tail of the watch's list, then one twice.
    expect(watch.settle(items[2] as Waiting)).toBe(true);
    expect(watch.settle(items[0] as Waiting)).toBe(true);
    expect(watch.settle(items[4] as Waiting)).toBe(true);
    expect(watch.settle(items[4] as Waiting)).toBe(false);
    expect(watch.size).toBe(2);
    await vi.waitFor(() => expect(expired).toHaveLength(2), { timeout: 5_000, interval: 10 });
    // Each expires on its own deadline's timer; two timers due in the same millisecond may fire
    // in either order on a loaded machine, so which went first is not asserted.
    expect(expired).toContain(items[1]);
    expect(expired).toContain(items[3]);
    expect(watch.size).toBe(0);
    // An item can be watched again once it left the watch.
    const again = items[0] as Waiting;
    watch.add(again);
    expect(watch.has(again)).toBe(true);
    expect(watch.size).toBe(1);
    watch.settle(again);
    watch.close();
  });

  it('armAll attaches every deadline at once', async () => {
    const expired: Waiting[] = [];
    const watch = new OverdueWatch<Waiting>('publish to t', (item) => expired.push(item), 60_000);
    const aborted = new AbortController();
    aborted.abort(new Error('gone'));
    const item = new Waiting({ signal: aborted.signal });
    watch.add(item);
    watch.armAll();
    await sleep(0);
    expect(expired).toEqual([item]);
    watch.close();
  });
});
