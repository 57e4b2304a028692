import { type LogEntry, type RecordingLogger, recordingLogger } from './conformance/helpers.js';

/** A field whose value is `undefined`: a logger prints it as noise (`error: undefined`) or drops it. */
export interface UndefinedField {
  readonly entry: LogEntry;
  readonly field: string;
}

export interface CaptureLogger extends RecordingLogger {
  /** Entries at warn or error: what an operator is paged for, so nothing normal may be there. */
  problems(): LogEntry[];
  /** Fields (bindings of child loggers included) present with the value `undefined`. */
  undefinedFields(): UndefinedField[];
  /** The problems and undefined fields as readable lines, empty when there are none (for `expect`). */
  complaints(): string[];
  /** Forgets what was captured so far. */
  clear(): void;
}

function show(entry: LogEntry): string {
  let fields: string;
  try {
    fields = JSON.stringify(entry.fields);
  } catch {
    fields = String(Object.keys(entry.fields));
  }
  return `${entry.level} ${entry.message} ${fields}`;
}

/**
 * A pino-compatible logger that keeps every entry, for tests that pass it as `logger` and then
 * check that a normal life cycle logged nothing at warn or error and no field without a value:
 *
 *   const logger = captureLogger();
 *   const manager = await createQueueManager({ driver: 'redis', url, logger });
 *   ...; await manager.close();
 *   expect(logger.complaints()).toEqual([]);
 */
export function captureLogger(): CaptureLogger {
  const entries: LogEntry[] = [];
  const base = recordingLogger(entries);
  const problems = () => entries.filter((entry) => entry.level === 'warn' || entry.level === 'error');
  const undefinedFields = () =>
    entries.flatMap((entry) =>
      Object.keys(entry.fields)
        .filter((field) => entry.fields[field] === undefined)
        .map((field) => ({ entry, field })),
    );
  return Object.assign(base, {
    problems,
    undefinedFields,
    complaints: () => [
      ...problems().map(show),
      ...undefinedFields().map(({ entry, field }) => `field ${field} is undefined in: ${show(entry)}`),
    ],
    clear: () => {
      entries.length = 0;
    },
  });
}
