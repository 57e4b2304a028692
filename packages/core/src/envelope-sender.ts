import { describeError, PlugmqError } from './errors.js';
import { LazyDeadline } from './signals.js';
import type { OutgoingEnvelope, Transport } from './transport.js';

/**
 * Hands envelopes to the transport under the publish deadline, maps failures to PlugmqError and
 * tracks publishes still in flight so that close() can wait for them.
 */
export class EnvelopeSender {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly transport: () => Transport,
    private readonly publishTimeoutMs: number,
  ) {}

  /**
   * Returns nothing when the transport stored the envelopes synchronously (no promise per message).
   * `onStored` runs once they are stored and gives the promise its value: the caller needs no
   * `.then` (and no promise) of its own on the hot path.
   */
  send<R = void>(
    envelopes: readonly OutgoingEnvelope[],
    signal: AbortSignal | undefined,
    what: string,
    onStored?: () => R,
  ): Promise<R> | undefined {
    if (signal?.aborted) {
      throw new PlugmqError(
        'PUBLISH_FAILED',
        `publish to ${what} was aborted by its signal before it started`,
        {
          cause: signal.reason,
        },
      );
    }
    const deadline = new LazyDeadline(this.publishTimeoutMs, signal, `publish to ${what}`);
    let sending: Promise<void> | void;
    try {
      sending = this.transport().publish(envelopes, deadline);
    } catch (error) {
      deadline.dispose();
      throw asPublishError(error, what);
    }
    if (sending === undefined) {
      deadline.dispose();
      return undefined;
    }
    return this.track(sending, deadline, what, onStored);
  }

  /** Resolves when every publish started so far has settled. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  /** A plain promise chain, not an async function: one promise less per publish on the hot path. */
  private track<R>(
    sending: Promise<void>,
    deadline: LazyDeadline,
    what: string,
    onStored: (() => R) | undefined,
  ): Promise<R> {
    const pending = this.pending;
    pending.add(sending);
    return sending.then(
      () => {
        pending.delete(sending);
        deadline.dispose();
        return onStored?.() as R;
      },
      (error: unknown) => {
        pending.delete(sending);
        deadline.dispose();
        throw asPublishError(error, what);
      },
    );
  }
}

function asPublishError(error: unknown, what: string): PlugmqError {
  if (error instanceof PlugmqError) return error;
  return new PlugmqError('PUBLISH_FAILED', `publish to ${what} failed: ${describeError(error)}`, {
    cause: error,
  });
}
