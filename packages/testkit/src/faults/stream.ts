import type { Message, QueueManager } from '@plugmq/core';
import { sleep } from '../conformance/helpers.js';

/**
 * What a fault scenario measures: which publishes the driver promised (resolved), which it refused
 * (rejected, with the error code), and which ids a consumer saw, how often. "Lost" is the only
 * number a guarantee can be broken by: a publish that resolved but never arrived.
 */
export class DeliveryLedger {
  readonly resolved = new Set<string>();
  readonly rejected = new Map<string, string>();
  /** Deliveries per id. */
  readonly delivered = new Map<string, number>();
  /** `Date.now()` of the latest delivery, for recovery times. */
  lastDeliveryAt = 0;
  /** Deliveries in arrival order, with their time (recovery time = first one after an event). */
  readonly arrivals: number[] = [];

  /** Records one delivery; pass it (or call it from) a handler. */
  record(id: string): void {
    this.delivered.set(id, (this.delivered.get(id) ?? 0) + 1);
    this.lastDeliveryAt = Date.now();
    this.arrivals.push(this.lastDeliveryAt);
  }

  /** A handler that records every message it is given. */
  handler = (message: Message<unknown>): void => this.record(message.id);

  lost(): string[] {
    return [...this.resolved].filter((id) => !this.delivered.has(id));
  }

  duplicates(): number {
    let extra = 0;
    for (const count of this.delivered.values()) extra += count - 1;
    return extra;
  }

  rejectionCodes(): string[] {
    return [...new Set(this.rejected.values())];
  }

  /** First delivery at or after `since` (ms), or undefined. */
  firstDeliveryAfter(since: number): number | undefined {
    return this.arrivals.find((at) => at >= since);
  }

  /**
   * Waits until every resolved publish was delivered, or `timeoutMs` passes: never throws, so the
   * scenario can report how many were lost instead of only that some were.
   */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.lost().length === 0) return;
      await sleep(50);
    }
  }

  /**
   * Like settle(), but also returns once no delivery came for `quietMs` (since the call or the
   * last delivery): a lost message never comes, and waiting all of `maxMs` for it only slows the
   * failing run.
   */
  async settleQuietly(quietMs: number, maxMs: number): Promise<void> {
    const since = Date.now();
    const deadline = since + maxMs;
    while (Date.now() < deadline && this.lost().length > 0) {
      if (Date.now() - Math.max(this.lastDeliveryAt, since) > quietMs) return;
      await sleep(100);
    }
  }
}

export interface StreamOptions {
  readonly manager: QueueManager;
  readonly type: string;
  readonly count: number;
  /** Publishes in flight at once: a producer that does not wait for each confirm (default 200). */
  readonly concurrency?: number;
  readonly ledger: DeliveryLedger;
  /** Called once as publish number `index` starts, for each index in `at` (e.g. restart the broker). */
  readonly at?: readonly number[];
  onIndex?(index: number): void;
  /** Pause this long every `every` publishes once an `at` event fired, so the stream spans it. */
  readonly pace?: { every: number; ms: number };
  /** Before publish `index`: a promise to wait for (e.g. until a fault is under way), or undefined. */
  gate?(index: number): Promise<void> | undefined;
  /** Ordering key of publish `index`, if any. */
  key?(index: number): string | undefined;
  /** A delay or priority for publish `index`, if any (only what the driver declares). */
  features?(index: number): { delayMs?: number; priority?: number } | undefined;
  /**
   * Each publish's deadline in ms, as the caller's AbortSignal (default: none, the manager's own
   * publishTimeoutMs). With a node dead, a publish must end (resolved or refused) within it.
   */
  readonly timeoutMs?: number;
  /** After each resolved publish, with the number resolved so far. */
  onResolved?(resolved: number): void;
}

/**
 * Publishes `count` messages (body: the index) with at most `concurrency` in flight, recording
 * each publish's outcome in the ledger. Ids are generated here (`<type>:<index>`), so a rejected
 * publish that the broker stored anyway is recognised when it arrives.
 */
export async function publishStream(options: StreamOptions): Promise<void> {
  const { manager, type, count, ledger } = options;
  const at = new Set(options.at ?? []);
  let fired = false;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      if (at.has(index)) {
        fired = true;
        options.onIndex?.(index);
      }
      const hold = options.gate?.(index);
      if (hold) await hold;
      const id = `${type}:${index}`;
      const key = options.key?.(index);
      const signal = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
      try {
        await manager.publish(type, index, {
          id,
          ...options.features?.(index),
          ...(key === undefined ? {} : { key }),
          ...(signal ? { signal } : {}),
        });
        ledger.resolved.add(id);
        options.onResolved?.(ledger.resolved.size);
      } catch (error) {
        ledger.rejected.set(id, String((error as { code?: unknown }).code ?? error));
      }
      if (fired && options.pace && index % options.pace.every === 0) await sleep(options.pace.ms);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 200, count) }, lane));
}
