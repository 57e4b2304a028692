import type { StreamRef } from './reader.js';

/** Ids per XACK: well below Lua's unpack() limit, and a reply Redis builds in one go. */
const MAX_IDS = 1_000;

/** Sends one stream's acks in one command; resolves when Redis ran it. */
export type SendAcks = (stream: StreamRef, ids: string[]) => Promise<unknown>;
/** Called once per batch when its command finished (`error` set when it failed for good). */
export type AcksDone = (stream: StreamRef, ids: readonly string[], error?: unknown) => void;

/**
 * Collects the acks of deliveries whose handlers resolved during one event-loop turn and sends
 * them as one XACK per stream (`XACK key group id id …`) instead of one command per message:
 * Redis and ioredis each handle one command and one reply for many entries.
 *
 * The handler's concurrency slot is free once its ack is queued here; the entry itself stays the
 * subscription's (in flight, though no longer counted against prefetch) until Redis confirmed
 * the ack, so close still waits for it and recovery never claims it from under us. An ack lost to a failure leaves
 * the entry pending: it is reclaimed and redelivered (at-least-once), never dropped.
 */
export class AckBatch {
  private readonly queued = new Map<StreamRef, string[]>();
  private scheduled = false;

  constructor(
    private readonly send: SendAcks,
    private readonly done: AcksDone,
  ) {}

  add(stream: StreamRef, id: string): void {
    const ids = this.queued.get(stream);
    if (ids === undefined) this.queued.set(stream, [id]);
    else ids.push(id);
    if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate, not a microtask: every handler finishing on this turn's replies joins.
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    for (const [stream, ids] of this.queued) {
      for (let start = 0; start < ids.length; start += MAX_IDS) {
        const chunk = start === 0 && ids.length <= MAX_IDS ? ids : ids.slice(start, start + MAX_IDS);
        this.send(stream, chunk).then(
          () => this.done(stream, chunk),
          (error: unknown) => this.done(stream, chunk, error),
        );
      }
    }
    this.queued.clear();
  };
}
