import { type Logger, redactCredentials } from '@plugmq/core/driver';
import kafkajs from 'kafkajs';

const { logLevel } = kafkajs;

/**
 * kafkajs lines that are part of normal operation, whatever level kafkajs gives them:
 * - `Response <Api>(…)`: a broker answered a request with an error code. kafkajs logs it at
 *   error and also hands it to the caller, who retries or reports it (a CreateTopics answered
 *   "already exists" on every process's first request, a coordinator still loading after a
 *   broker start). The caller's own log or error is the one that counts.
 * - The idempotent producer's EoS warning: retries are bounded on purpose (publish deadlines),
 *   and a producer that exhausts them is replaced (see resetProducer).
 */
const ROUTINE = [
  /^Response [A-Za-z]+\(key: \d+, version: \d+\)$/,
  /^Limiting retries for the idempotent producer/,
];

/** kafkajs log lines → the PlugMQ logger: credentials masked, routine lines at debug, no empty fields. */
export function logCreator(logger: Logger) {
  return () =>
    ({ level, log }: { level: number; log: { message: string; [field: string]: unknown } }) => {
      const { message, timestamp: _t, logger: _l, ...rest } = log;
      const raw = String(message);
      const text = `kafkajs: ${redactCredentials(raw)}`;
      const fields: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(rest)) {
        if (value === undefined) continue;
        fields[name] = name === 'error' || name === 'stack' ? redactCredentials(String(value)) : value;
      }
      if (ROUTINE.some((pattern) => pattern.test(raw))) logger.debug(fields, text);
      else if (level <= logLevel.ERROR) logger.warn(fields, text);
      else if (level === logLevel.WARN) logger.info(fields, text);
      else logger.debug(fields, text);
    };
}
