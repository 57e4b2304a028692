/** kafkajs error shapes the client and the group member both read. */

// Retriable broker errors keep being retried by kafkajs for this long before we see them; our
// own loops (publish deadline, consumer restart) take over after that.
export const RETRY = {
  initialRetryTime: 100,
  maxRetryTime: 2_000,
  retries: 8,
  restartOnFailure: async () => true,
};

export function isMarkedRetriable(error: unknown): boolean {
  return (error as { retriable?: unknown } | undefined)?.retriable === true;
}

export function errorType(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    current =
      (current as { cause?: unknown }).cause ?? (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}
