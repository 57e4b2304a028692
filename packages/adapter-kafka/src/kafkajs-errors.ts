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

/**
 * Retries an admin call while the broker answers with a retriable error; right after a topic is
 * created its leader is known to the controller a moment before the broker serves offsets for it.
 */
export async function retrying<T>(
  call: () => Promise<T>,
  isRetriable: (error: unknown) => boolean,
): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (let wait = 50; ; wait = Math.min(wait * 2, 1_000)) {
    try {
      return await call();
    } catch (error) {
      if (!isRetriable(error) || Date.now() + wait > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
