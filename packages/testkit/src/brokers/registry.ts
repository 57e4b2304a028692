import type { BrokerHandle } from './types.js';

// Brokers this process started and has not stopped yet, so one call (or the process ending)
// removes them all.

const live = new Set<BrokerHandle>();
const groups = new Set<number>();
let exitHookInstalled = false;

export function track(handle: BrokerHandle): void {
  live.add(handle);
}

export function untrack(handle: BrokerHandle): void {
  live.delete(handle);
}

/**
 * Local broker process groups: SIGKILLed synchronously when this process exits, the only kind of
 * work an 'exit' handler can do. Containers need async API calls, which the watchdog makes.
 */
export function trackProcessGroup(pgid: number): void {
  groups.add(pgid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const g of groups) {
      try {
        process.kill(-g, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
}

export function untrackProcessGroup(pgid: number): void {
  groups.delete(pgid);
}

/** Stops every broker this process started (containers removed, processes killed, data deleted). */
export async function stopAllBrokers(): Promise<void> {
  const handles = [...live];
  const results = await Promise.allSettled(handles.map((h) => h.stop()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    throw new AggregateError(
      failed.map((f) => f.reason),
      `could not stop ${failed.length} broker(s)`,
    );
  }
}
