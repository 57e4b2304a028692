import { PlugmqError, type TransportPublishContext } from '@plugmq/core/driver';

/**
 * A publish context for the driver's own publishes (retry copies), shaped like core's: the timer
 * behind the signal is only made when something waits on it.
 */
export function lazyDeadline(timeoutMs: number, what: string): TransportPublishContext {
  let signal: AbortSignal | undefined;
  return {
    get signal(): AbortSignal {
      if (!signal) {
        const controller = new AbortController();
        setTimeout(
          () =>
            controller.abort(
              new PlugmqError('PUBLISH_FAILED', `${what} did not complete within ${timeoutMs} ms`),
            ),
          timeoutMs,
        ).unref();
        signal = controller.signal;
      }
      return signal;
    },
  };
}

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
