import type { Logger } from '@plugmq/core';

/** The most lines one test keeps; the first ones tell how a failure began. */
const MAX_LINES = 400;

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/**
 * The logger of the managers a conformance test creates: it keeps PlugMQ's own lines (warn and
 * error, and debug lines starting with `plugmq:`; not the client libraries' debug chatter) and
 * prints them only when the test fails, so a failure that shows once in a CI run comes with what
 * the driver saw.
 */
export class LogRecorder {
  private lines: string[] = [];
  private dropped = 0;
  private startedAt = Date.now();

  readonly logger: Logger = {
    trace: () => {},
    debug: (fields: unknown, message?: string) => this.record('debug', fields, message),
    info: (fields: unknown, message?: string) => this.record('info', fields, message),
    warn: (fields: unknown, message?: string) => this.record('warn', fields, message),
    error: (fields: unknown, message?: string) => this.record('error', fields, message),
  };

  /** Called before each test: forgets the previous test's lines. */
  reset(): void {
    this.lines = [];
    this.dropped = 0;
    this.startedAt = Date.now();
  }

  /** What the driver logged during the test, one line per entry, times from the test's start. */
  report(): string {
    const more = this.dropped > 0 ? `\n… and ${this.dropped} more lines` : '';
    return this.lines.length === 0 ? '(nothing logged at debug or above)' : this.lines.join('\n') + more;
  }

  private record(level: Level, fields: unknown, message: string | undefined): void {
    const text = typeof fields === 'string' ? fields : (message ?? '');
    if ((level === 'debug' || level === 'info') && !text.startsWith('plugmq:')) return;
    if (this.lines.length >= MAX_LINES) {
      this.dropped++;
      return;
    }
    const detail = typeof fields === 'string' ? '' : ` ${safeJson(fields)}`;
    this.lines.push(`+${Date.now() - this.startedAt}ms ${level} ${text}${detail}`);
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return String(value);
  }
}
