import { describeError } from './errors.js';
import type { Logger } from './logger.js';
import type { OutgoingEnvelope } from './transport.js';
import type { Handler } from './types.js';

/** A message about to be published, as a publish hook sees it: `headers` may be changed. */
export interface PublishingMessage {
  readonly type: string;
  readonly id: string;
  readonly key?: string;
  /** A private copy: what a hook puts here (e.g. `traceparent`) travels with the message. */
  readonly headers: Record<string, string>;
}

/**
 * Runs before each message is sent; may add headers. May return a function that core calls once
 * the publish settled (with the error when it failed), e.g. to end a span.
 */
export type PublishHook = (message: PublishingMessage) => undefined | ((error?: unknown) => void);

/** Which subscription a handle hook wraps. */
export interface HandleScope {
  readonly driver: string;
  readonly types: readonly string[];
  readonly group: string;
}

/**
 * Manager-wide instrumentation, registered with `manager.use(...)`: a publish hook, and handler
 * middleware applied to every subscription started afterwards. With none registered publish pays a
 * single `undefined` test and consume wraps nothing.
 */
export interface ManagerMiddleware {
  publish?: PublishHook;
  handle?: (next: Handler<unknown>, scope: HandleScope) => Handler<unknown>;
}

type Finish = (error?: unknown) => void;

/** Runs every publish hook for every message; a failing hook is logged, never fails the publish. */
export function runPublishHooks(
  hooks: readonly PublishHook[],
  messages: readonly PublishingMessage[],
  logger: Logger,
): Finish {
  const finishers: Finish[] = [];
  for (const message of messages) {
    for (const hook of hooks) {
      try {
        const finish = hook(message);
        if (typeof finish === 'function') finishers.push(finish);
      } catch (error) {
        logger.warn(
          { type: message.type, id: message.id, err: describeError(error) },
          'plugmq: publish hook failed',
        );
      }
    }
  }
  return (error) => {
    for (const finish of finishers) {
      try {
        finish(error);
      } catch (hookError) {
        logger.warn({ err: describeError(hookError) }, 'plugmq: publish hook finisher failed');
      }
    }
  };
}

/** Wraps `handler` in each registered handle hook; the first registered is the outermost. */
export function wrapHandler(
  handler: Handler<unknown>,
  hooks: readonly NonNullable<ManagerMiddleware['handle']>[],
  scope: HandleScope,
): Handler<unknown> {
  let wrapped = handler;
  for (let index = hooks.length - 1; index >= 0; index--) wrapped = hooks[index]!(wrapped, scope);
  return wrapped;
}

/**
 * Sends `built` through `send` with every publish hook run on a private copy of each message's
 * headers first (what a hook adds travels with the message); each hook's finisher hears the outcome.
 */
export async function sendWithHooks(
  built: readonly OutgoingEnvelope[],
  hooks: readonly PublishHook[],
  logger: Logger,
  send: (envelopes: OutgoingEnvelope[]) => Promise<void>,
): Promise<string[]> {
  const envelopes = built.map((envelope) => ({ ...envelope, headers: { ...envelope.headers } }));
  const messages: PublishingMessage[] = envelopes.map(({ type, id, key, headers }) =>
    key === undefined ? { type, id, headers } : { type, id, key, headers },
  );
  const finish = runPublishHooks(hooks, messages, logger);
  try {
    await send(envelopes);
  } catch (error) {
    finish(error);
    throw error;
  }
  finish();
  return envelopes.map((envelope) => envelope.id);
}
