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
