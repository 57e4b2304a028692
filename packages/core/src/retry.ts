import { UnrecoverableError } from './errors.js';
import type { Envelope } from './transport.js';
import type { Message, RetryOptions } from './types.js';

/** The envelope a driver stores for a retry: the same message, its next attempt. */
export function nextAttempt<E extends Envelope>(envelope: E): E {
  return { ...envelope, attempt: envelope.attempt + 1 };
}

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly factor: number;
  readonly jitter: boolean;
  readonly shouldRetry?: (error: unknown, message: Message<unknown>) => boolean;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  factor: 2,
  jitter: false,
});

export function resolveRetryPolicy(options: RetryOptions | undefined): RetryPolicy {
  return { ...DEFAULT_RETRY_POLICY, ...stripUndefined(options ?? {}) };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Delay before attempt `failedAttempt + 1`: min(maxDelayMs, initialDelayMs × factor^(failedAttempt − 1)),
 * spread by at most ±20 % when `jitter` is on (never above maxDelayMs).
 */
export function retryDelayMs(
  policy: RetryPolicy,
  failedAttempt: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, failedAttempt - 1);
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** exponent);
  if (!policy.jitter) return Math.round(base);
  const spread = base * 0.2 * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(policy.maxDelayMs, base + spread)));
}

/** True when a message that failed on `attempt` has no attempts left. */
export function isExhausted(policy: RetryPolicy, attempt: number): boolean {
  return attempt >= policy.maxAttempts;
}

/**
 * Whether a failure may be retried at all (attempts aside): not for an `UnrecoverableError`, nor
 * when the policy's `shouldRetry` answers false. `onPredicateError` hears of a predicate that threw.
 */
export function isRetryable(
  policy: RetryPolicy,
  error: unknown,
  message: Message<unknown>,
  onPredicateError?: (predicateError: unknown) => void,
): boolean {
  if (error instanceof UnrecoverableError) return false;
  if (policy.shouldRetry === undefined) return true;
  try {
    return policy.shouldRetry(error, message) !== false;
  } catch (predicateError) {
    onPredicateError?.(predicateError);
    return true;
  }
}
