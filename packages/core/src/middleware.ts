import { PlugmqError } from './errors.js';
import type { Consumer, Handler, HandlerContext, Message } from './types.js';

/**
 * Handler middleware: a plain function that takes the next handler and returns a handler. Compose
 * them per consumer with `applyMiddleware` (or `withConsumerMiddleware` for a Consumer object);
 * manager-wide middleware (tracing) goes through `manager.use({ handle })`.
 */
export type HandlerMiddleware = (next: Handler<unknown>) => Handler<unknown>;

/** `applyMiddleware(h, a, b)` runs a, then b, then h: the first listed is the outermost. */
export function applyMiddleware<T>(handler: Handler<T>, ...middleware: HandlerMiddleware[]): Handler<T> {
  let wrapped = handler as Handler<unknown>;
  for (let index = middleware.length - 1; index >= 0; index--) {
    const layer = middleware[index];
    if (typeof layer !== 'function') {
      throw new PlugmqError('INVALID_ARGUMENT', `middleware[${index}] must be a function (next) => handler`);
    }
    wrapped = layer(wrapped);
  }
  return wrapped as Handler<T>;
}

/** The same Consumer with its `handle` wrapped by `middleware` (first listed outermost). */
export function withConsumerMiddleware<T>(
  consumer: Consumer<T>,
  ...middleware: HandlerMiddleware[]
): Consumer<T> {
  const handle = applyMiddleware<T>((message, context) => consumer.handle(message, context), ...middleware);
  return {
    types: consumer.types,
    group: consumer.group,
    ...(consumer.options ? { options: consumer.options } : {}),
    handle: async (message, context) => handle(message, context),
  };
}

/**
 * Fails a handler that runs longer than `ms` with a TIMEOUT error (so the message is retried, then
 * dead-lettered) and aborts the `context.signal` the handler sees; the signal also follows the
 * subscription's shutdown signal. A handler that ignores its signal keeps running in the
 * background: JavaScript cannot stop it, only stop waiting for it.
 */
export function withTimeout(ms: number): HandlerMiddleware {
  if (!Number.isInteger(ms) || ms < 1) {
    throw new PlugmqError('INVALID_ARGUMENT', `withTimeout(ms) needs a positive integer (got ${ms})`);
  }
  return (next) => (message: Message<unknown>, context: HandlerContext) => {
    const controller = new AbortController();
    const onShutdown = () => controller.abort(context.signal.reason);
    if (context.signal.aborted) onShutdown();
    else context.signal.addEventListener('abort', onShutdown, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new PlugmqError(
          'TIMEOUT',
          `handler for ${message.type} (id ${message.id}) ran longer than ${ms} ms`,
        );
        controller.abort(error);
        reject(error);
      }, ms);
    });
    const running = Promise.resolve().then(() => next(message, { signal: controller.signal }));
    return Promise.race([running, timedOut]).finally(() => {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', onShutdown);
    });
  };
}
