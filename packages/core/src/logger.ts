/** The method shape pino, bunyan-style and console-like loggers share: `(fields, message)` or `(message)`. */
export interface LogFn {
  (fields: Record<string, unknown>, message?: string): void;
  (message: string): void;
}

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** pino's child loggers carry bound fields; optional so that any object with the five methods fits. */
  child?(bindings: Record<string, unknown>): Logger;
}

const noop: LogFn = () => {};

/** The default: logs nothing. Bind `TYPES.Logger` (or pass `logger`) to see PlugMQ's logs. */
export const silentLogger: Logger = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
});

/**
 * A logger whose every line carries `bindings` (e.g. `{ driver }`): pino's own `child` where the
 * logger has one, else a wrapper that merges the fields, so structured fields never depend on
 * which logger the application brought.
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  if (logger.child) return logger.child(bindings);
  const bind =
    (level: Exclude<keyof Logger, 'child'>): LogFn =>
    (fieldsOrMessage: Record<string, unknown> | string, message?: string) => {
      const call = logger[level] as (fields: Record<string, unknown>, message?: string) => void;
      if (typeof fieldsOrMessage === 'string') call.call(logger, { ...bindings }, fieldsOrMessage);
      else call.call(logger, { ...bindings, ...fieldsOrMessage }, message);
    };
  return {
    trace: bind('trace'),
    debug: bind('debug'),
    info: bind('info'),
    warn: bind('warn'),
    error: bind('error'),
    child: (more) => childLogger(logger, { ...bindings, ...more }),
  };
}
