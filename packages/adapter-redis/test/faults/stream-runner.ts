import type { QueueManager } from '@plugmq/core';
import type { DeliveryLedger } from '@plugmq/testkit';

/** One publish of a stream: when it started and ended, and the code it was rejected with. */
export interface Outcome {
  readonly startedAt: number;
  endedAt: number;
  code?: string;
  message?: string;
}

export interface StreamPlan {
  readonly count: number;
  readonly inFlight: number;
  readonly deadlineMs: number;
  /** The index whose publish calls `onKill` just before it starts. */
  readonly killAt: number;
  /**
   * From `paceFrom` until `recovered()`, publishes start `paceMs` apart: the lanes then last
   * beyond the failover, so publishes still start while the broker is failing over, instead of
   * all waiting on publishes made before the kill.
   */
  readonly paceFrom: number;
  readonly paceMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Publishes `plan.count` messages of `type` (id `${type}:${index}`, body the index) on
 * `plan.inFlight` lanes, each with its own deadline, recording every outcome in `outcomes` and
 * `ledger` (resolved / rejected).
 */
export async function publishStream(
  manager: QueueManager,
  type: string,
  ledger: DeliveryLedger,
  outcomes: Map<string, Outcome>,
  plan: StreamPlan,
  onKill: () => void,
  recovered: () => boolean,
): Promise<void> {
  let next = 0;
  let nextStart = 0;
  const pace = async (): Promise<void> => {
    const now = Date.now();
    const at = Math.max(now, nextStart);
    nextStart = at + plan.paceMs;
    if (at > now) await sleep(at - now);
  };
  const lane = async (): Promise<void> => {
    while (next < plan.count) {
      const index = next++;
      if (index >= plan.paceFrom && !recovered()) await pace();
      if (index === plan.killAt) onKill();
      const id = `${type}:${index}`;
      const outcome: Outcome = { startedAt: Date.now(), endedAt: 0 };
      outcomes.set(id, outcome);
      try {
        await manager.publish(type, index, { id, signal: AbortSignal.timeout(plan.deadlineMs) });
        ledger.resolved.add(id);
      } catch (error) {
        outcome.code = String((error as { code?: unknown }).code ?? error);
        outcome.message = error instanceof Error ? error.message : String(error);
        ledger.rejected.set(id, outcome.code);
      }
      outcome.endedAt = Date.now();
    }
  };
  await Promise.all(Array.from({ length: plan.inFlight }, lane));
}
