import { delay } from '@plugmq/core/driver';

/**
 * Which failures are worth sending the same command again for: a connection cut under it, or a
 * reply with which Redis (mostly a Cluster in a failover) says "not now" without running it.
 */

/**
 * Replies of a server that did not run the command and may run it later:
 * - CLUSTERDOWN: a slot's master failed and no replica has taken over yet (or a slot is unserved);
 * - TRYAGAIN: a multi-key command during a slot migration; MOVED/ASK: the slot is elsewhere
 *   (ioredis follows them, but gives them back once its redirections are used up);
 * - MASTERDOWN, LOADING: a node between roles, or still reading its data at startup;
 * - READONLY: a write reached a node demoted to replica; UNBLOCKED: a blocked read woken because
 *   its node changed role.
 */
const NOT_NOW = /^(?:CLUSTERDOWN|TRYAGAIN|MOVED|ASK|MASTERDOWN|LOADING|READONLY|UNBLOCKED)\b/;

/** ioredis' wording when every redirection of a command was used up; the last one says why. */
const REDIRECTIONS = /^Too many Cluster redirections\. Last error: (?:[A-Za-z]*Error: )?/;

/**
 * ioredis aborts the commands of an auto-pipelined batch or MULTI that was in flight when the
 * connection dropped (it cannot know which of them Redis ran). Such a command is safe to send
 * again where running it twice is harmless or merely duplicates (at-least-once).
 */
export function isAbortedByClose(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'AbortError' ||
      /Connection is closed|Command aborted due to connection close/.test(error.message))
  );
}

/**
 * A failure that passes by itself: a dropped connection (the command may have run: sending it
 * again can duplicate), or a reply saying the command did not run (sending it again is exact).
 */
export function isTransient(error: unknown): boolean {
  if (isAbortedByClose(error)) return true;
  if (!(error instanceof Error)) return false;
  const message = error.message;
  if (NOT_NOW.test(message)) return true;
  if (REDIRECTIONS.test(message)) return isTransient(new Error(message.replace(REDIRECTIONS, '')));
  // A MULTI discarded because a queued command met one of the above (e.g. CLUSTERDOWN).
  const previous = (error as { previousErrors?: unknown }).previousErrors;
  if (message.startsWith('EXECABORT') && Array.isArray(previous) && previous.length > 0) {
    return previous.every(isTransient);
  }
  // The Cluster client could not reach any node to learn the slots (all restarting at once).
  return /Failed to refresh slots cache|None of startup nodes is available/.test(message);
}

/**
 * Runs `work` again while it fails transiently (see isTransient); a retry meeting a dropped
 * connection waits in ioredis' offline queue until the reconnect, one meeting CLUSTERDOWN is
 * answered again after a pause. `keepGoing` ends it (deadline passed, closed).
 */
export async function againWhileTransient<T>(
  work: () => Promise<T>,
  keepGoing: () => boolean = () => true,
  retryable: (error: unknown) => boolean = isTransient,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!retryable(error) || !keepGoing() || attempt >= 1_000) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, 10 * attempt)));
    }
  }
}

/**
 * How long a Cluster may answer transiently before a loop warns: a failover takes the cluster's
 * `cluster-node-timeout` (15 s by default) plus an election of about a second.
 */
export const FAILOVER_GRACE_MS = 30_000;

/**
 * The failures in a row of one loop (reader, claimer, mover): `failed()` says whether to warn,
 * once per run of failures. On a Cluster or behind Sentinels, transient failures warn only once
 * the run outlasts FAILOVER_GRACE_MS, so a failover logs nothing at warn; on a single server (whose connection
 * loss is already reported by the client factory) the first failure warns.
 */
export class FailureStreak {
  private since = 0;
  private warned = false;
  /** Failures since the last success. */
  count = 0;

  constructor(
    private readonly cluster: boolean,
    private readonly graceMs = FAILOVER_GRACE_MS,
  ) {}

  /** Records a failure; true when it is the one to warn about. */
  failed(error: unknown): boolean {
    if (this.count++ === 0) this.since = Date.now();
    if (this.warned) return false;
    if (this.cluster && isTransient(error) && Date.now() - this.since < this.graceMs) return false;
    this.warned = true;
    return true;
  }

  succeeded(): void {
    this.count = 0;
    this.warned = false;
  }

  /** Waits before the loop's next try: 50 ms doubling with each failure in a row, at most 2 s. */
  pause(): Promise<void> {
    return delay(Math.min(2_000, 50 * 2 ** Math.min(this.count, 6)));
  }
}
