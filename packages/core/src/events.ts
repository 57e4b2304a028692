import type { Envelope } from './transport.js';

/** What happened to a message; the raw material for metrics, tracing and dashboards. */
export type PlugmqEvent =
  | { kind: 'published'; driver: string; type: string; id: string; count: number }
  | {
      kind: 'handled';
      driver: string;
      type: string;
      group: string;
      id: string;
      attempt: number;
      outcome: 'acked' | 'failed';
      durationMs: number;
    }
  | { kind: 'retried'; driver: string; type: string; group: string; id: string; attempt: number }
  | { kind: 'dead-lettered'; driver: string; type: string; group: string; id: string; deadLetter: string }
  | { kind: 'dropped'; driver: string; type: string; group: string; id: string }
  | { kind: 'unrouted'; driver: string; type: string; id: string };

export type PlugmqEventListener = (event: PlugmqEvent) => void;

/** Fans events out to listeners; with none registered every emit is a single boolean test. */
export class ManagerEvents {
  private listeners: PlugmqEventListener[] = [];
  enabled = false;

  constructor(private readonly driver: string) {}

  on(listener: PlugmqEventListener): () => void {
    this.listeners = [...this.listeners, listener];
    this.enabled = true;
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
      this.enabled = this.listeners.length > 0;
    };
  }

  private emit(event: PlugmqEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A broken listener must never break message flow.
      }
    }
  }

  published(type: string, id: string, count = 1): void {
    if (this.enabled) this.emit({ kind: 'published', driver: this.driver, type, id, count });
  }

  handled(envelope: Envelope, group: string, outcome: 'acked' | 'failed', startedAt: number): void {
    if (!this.enabled) return;
    const { type, id, attempt } = envelope;
    this.emit({
      kind: 'handled',
      driver: this.driver,
      type,
      group,
      id,
      attempt,
      outcome,
      durationMs: performance.now() - startedAt,
    });
  }

  retried(envelope: Envelope, group: string): void {
    if (this.enabled)
      this.emit({
        kind: 'retried',
        driver: this.driver,
        type: envelope.type,
        group,
        id: envelope.id,
        attempt: envelope.attempt,
      });
  }

  deadLettered(envelope: Envelope, group: string, deadLetter: string): void {
    if (this.enabled)
      this.emit({
        kind: 'dead-lettered',
        driver: this.driver,
        type: envelope.type,
        group,
        id: envelope.id,
        deadLetter,
      });
  }

  dropped(envelope: Envelope, group: string): void {
    if (this.enabled)
      this.emit({ kind: 'dropped', driver: this.driver, type: envelope.type, group, id: envelope.id });
  }

  unrouted(envelope: Envelope): void {
    if (this.enabled)
      this.emit({ kind: 'unrouted', driver: this.driver, type: envelope.type, id: envelope.id });
  }
}
