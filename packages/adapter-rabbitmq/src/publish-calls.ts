import { abortReason, LinkedList, type ListNode, type TransportPublishContext } from '@plugmq/core/driver';

/** One `send` call: resolves once every item of it is confirmed; rejects on the first failure. */
export interface Call extends ListNode {
  readonly context: TransportPublishContext;
  readonly startedAt: number;
  remaining: number;
  settled: boolean;
  armed: boolean;
  disarm: (() => void) | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

/** Unconfirmed publishes older than this start honouring their deadline signal (made lazily by core). */
const ARM_AFTER_MS = 200;

/**
 * The publish calls waiting for confirms, in start order. A call's deadline signal is only
 * touched once it has waited `ARM_AFTER_MS` (or at once when there is no channel), so the fast
 * path costs no listener; a sweeper ticks while calls wait, and tells `onTick` too.
 */
export class PendingCalls {
  /** A list, not a Set: one add and one delete per publish made a Set rehash its tables. */
  private readonly calls = new LinkedList<Call>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly onTick: (now: number) => void) {}

  get size(): number {
    return this.calls.size;
  }

  start(
    context: TransportPublishContext,
    items: number,
    resolve: () => void,
    reject: (error: unknown) => void,
  ): Call {
    const call: Call = {
      context,
      startedAt: Date.now(),
      remaining: items,
      settled: false,
      armed: false,
      disarm: undefined,
      resolve,
      reject,
      listed: false,
      listPrev: undefined,
      listNext: undefined,
    };
    this.calls.add(call);
    this.sweeper ??= setInterval(() => this.sweep(), ARM_AFTER_MS).unref();
    return call;
  }

  /** One item of the call confirmed: resolves the call with its last item. */
  confirmOne(call: Call): void {
    if (call.settled || --call.remaining > 0) return;
    call.settled = true;
    this.calls.delete(call);
    call.disarm?.();
    call.resolve();
  }

  fail(call: Call, error: unknown): void {
    if (call.settled) return;
    call.settled = true;
    this.calls.delete(call);
    call.disarm?.();
    call.reject(error);
  }

  failAll(error: unknown): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const call of [...this.calls]) this.fail(call, error);
  }

  armAll(): void {
    for (const call of this.calls) this.arm(call);
  }

  /** From now on the call honours its deadline signal (publishTimeoutMs or the caller's signal). */
  arm(call: Call): void {
    if (call.armed || call.settled) return;
    call.armed = true;
    const signal = call.context.signal;
    const onAbort = () => this.fail(call, abortReason(signal, 'publish to RabbitMQ'));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    call.disarm = () => signal.removeEventListener('abort', onAbort);
  }

  private sweep(): void {
    if (this.calls.size === 0) {
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = Date.now();
    this.onTick(now);
    const old = now - ARM_AFTER_MS;
    // Calls are kept in start order: stop at the first young one.
    for (const call of this.calls) {
      if (call.startedAt > old) break;
      this.arm(call);
    }
  }
}
