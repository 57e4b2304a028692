import type { Logger } from '@plugmq/core';

const print =
  (level: string) =>
  (fields: unknown, message?: string): void => {
    console.log(new Date().toISOString().slice(11, 23), level, message ?? '', JSON.stringify(fields));
  };

const timestampedLogger: Logger = {
  trace() {},
  debug() {},
  info: print('info'),
  warn: print('warn'),
  error: print('error'),
  child: () => timestampedLogger,
};

/**
 * With FAULT_LOG=1 in the environment, a logger printing the driver's info and warnings with a
 * timestamp (to line them up with a fault's figures); otherwise undefined, which is silent.
 */
export function faultLogger(): Logger | undefined {
  return process.env.FAULT_LOG ? timestampedLogger : undefined;
}
