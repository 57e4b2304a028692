import type { Envelope } from './transport.js';

/** What happened to a message; the raw material for metrics, tracing and dashboards. */
export type PlugmqEvent =
  | { kind: 'published'; driver: string; type: string; id: string; count: number }
  /** A handler is about to run (pairs with `handled`; the difference is the in-flight count). */
  | { kind: 'delivered'; driver: string; type: string; group: string; id: string; attempt: number }
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
  | { kind: 'unrouted'; driver: string; type: string; id: string }
  /** A subscription went live or closed: dashboards learn consumers (and their dead-letter types). */
  | { kind: 'subscribed' | 'unsubscribed'; driver: string; subscription: SubscriptionInfo };

/** What a live subscription looks like from outside (dashboards, `manager.subscriptionInfo()`). */
export interface SubscriptionInfo {
  readonly types: readonly string[];
  readonly group: string;
  readonly concurrency: number;
  /** The configured dead-letter type; '' means the default `${type}.dlq`; false drops. */
  readonly deadLetter: string | false;
  readonly inFlight: number;
}

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

  delivered(envelope: Envelope, group: string): void {
    this.emit({
      kind: 'delivered',
      driver: this.driver,
      type: envelope.type,
      group,
      id: envelope.id,
      attempt: envelope.attempt,
    });
  }

  /** `startedAt` is 0 when nobody listened as the handler started: no `delivered` was sent, so skip. */
  handled(envelope: Envelope, group: string, outcome: 'acked' | 'failed', startedAt: number): void {
    if (!this.enabled || startedAt === 0) return;
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

  subscription(kind: 'subscribed' | 'unsubscribed', subscription: SubscriptionInfo): void {
    if (this.enabled) this.emit({ kind, driver: this.driver, subscription });
  }

  unrouted(envelope: Envelope): void {
    if (this.enabled)
      this.emit({ kind: 'unrouted', driver: this.driver, type: envelope.type, id: envelope.id });
  }
}
