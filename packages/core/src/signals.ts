import { PlugmqError } from './errors.js';

/**
 * A publish context whose AbortSignal is made only when a transport asks for it: most publishes
 * never wait, and a timer per publish would cost more than the publish itself. The deadline
 * counts from the publish, not from the first look at `signal` (transports look late, once a
 * publish is overdue): the sender calls `start` as soon as the transport's call returns
 * unfinished, so a publish the transport stores at once reads no clock at all.
 */
export class LazyDeadline {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private detach: (() => void) | undefined;
  private startedAt = -1;

  /** `what` is the message type (or batch) the publish goes to. */
  constructor(
    private readonly timeoutMs: number,
    private readonly userSignal: AbortSignal | undefined,
    private readonly what: string,
  ) {}

  /** Starts the clock, once. */
  start(): void {
    if (this.startedAt < 0) this.startedAt = performance.now();
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.start();
      const controller = new AbortController();
      this.controller = controller;
      const left = Math.max(0, this.timeoutMs - (performance.now() - this.startedAt));
      const what = `publish to ${this.what}`;
      this.timer = setTimeout(() => {
        controller.abort(
          new PlugmqError('PUBLISH_FAILED', `${what} did not complete within ${this.timeoutMs} ms`),
        );
      }, left);
      this.timer.unref?.();
      const user = this.userSignal;
      if (user) {
        const onAbort = () => controller.abort(abortReason(user, what));
        if (user.aborted) onAbort();
        else {
          user.addEventListener('abort', onAbort, { once: true });
          this.detach = () => user.removeEventListener('abort', onAbort);
        }
      }
    }
    return this.controller.signal;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.detach?.();
  }
}

/** The error a signal-aborted operation rejects with: the signal's PlugmqError reason, or PUBLISH_FAILED. */
export function abortReason(signal: AbortSignal, what: string): PlugmqError {
  const reason: unknown = signal.reason;
  if (reason instanceof PlugmqError) return reason;
  return new PlugmqError('PUBLISH_FAILED', `${what} was aborted by its signal`, { cause: reason });
}

/** Rejects when `signal` aborts; for waits that must honour a publish deadline. */
export function waitForAbort(
  signal: AbortSignal,
  what: string,
): { promise: Promise<never>; dispose(): void } {
  let dispose = () => {};
  const promise = new Promise<never>((_, reject) => {
    if (signal.aborted) {
      reject(abortReason(signal, what));
      return;
    }
    const onAbort = () => reject(abortReason(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    dispose = () => signal.removeEventListener('abort', onAbort);
  });
  promise.catch(() => {});
  return { promise, dispose: () => dispose() };
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * `work`, or a rejection with `timedOut()` once `ms` have passed, whichever comes first; the
 * timer is cleared either way. For steps that must not hang while a broker is away (a close, a
 * health check); `work` itself goes on in the background.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, timedOut: () => unknown): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timedOut()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
