import type { CodecRegistry } from './codec.js';
import { DEAD_LETTER_GROUP, DEAD_LETTER_HEADERS } from './dead-letter.js';
import { describeError, PlugmqError } from './errors.js';
import type {
  BrowseDeadLettersOptions,
  DeadLetterRecord,
  DeadLetters,
  ReplayDeadLettersOptions,
} from './inspection.js';
import {
  type Delivery,
  type Envelope,
  type OutgoingEnvelope,
  type Transport,
  type TransportSubscription,
  toDeliverFn,
} from './transport.js';
import { assertMessageType, invalidArgument, isInteger } from './validation.js';

const DEFAULT_BROWSE_LIMIT = 100;
const MAX_BROWSE_LIMIT = 1000;
/** Dead letters replayed per transport subscription: one peek tells how many to wait for. */
const REPLAY_CHUNK = 500;
/**
 * A replay waits this long for a delivery it counted on (peeked) before it gives up: another
 * replayer may have taken it meanwhile. Counted from the moment the subscription is up, not
 * from the subscribe call (joining a Kafka group takes seconds), and long enough for a consumer
 * that restarts after joining (a Kafka member re-joins in about 6 s when a fresh dead-letter
 * topic's leader is not yet known everywhere): giving up then reports 0 with letters stored.
 */
const REPLAY_IDLE_MS = 15_000;

export interface DeadLetterStoreDeps {
  readonly driver: string;
  readonly transport: () => Transport;
  readonly codecs: CodecRegistry;
  send(envelope: OutgoingEnvelope, signal: AbortSignal | undefined): Promise<void> | undefined;
  assertOpen(): void;
  noteDeadLetterType(type: string): void;
}

const OWN_HEADERS: ReadonlySet<string> = new Set(Object.values(DEAD_LETTER_HEADERS));

function applicationHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (!OWN_HEADERS.has(name)) kept[name] = value;
  return kept;
}

/** `queue.deadLetters`: browse with `Transport.peek`, replay by consuming the reserved group. */
export class DeadLetterStore implements DeadLetters {
  /** Aborted by the manager's close: a running replay stops between messages. */
  private readonly closed = new AbortController();
  private readonly replays = new Set<Promise<number>>();

  constructor(private readonly deps: DeadLetterStoreDeps) {}

  async browse(type: string, options?: BrowseDeadLettersOptions): Promise<DeadLetterRecord[]> {
    this.deps.assertOpen();
    assertMessageType(type);
    const limit = limitOption(options, DEFAULT_BROWSE_LIMIT, MAX_BROWSE_LIMIT);
    this.deps.noteDeadLetterType(type);
    const envelopes = await this.peek(type, limit, 'browse');
    return envelopes.map((envelope) => this.record(type, envelope));
  }

  replay(type: string, options?: ReplayDeadLettersOptions): Promise<number> {
    const replaying = this.replayAll(type, options);
    this.replays.add(replaying);
    const forget = () => this.replays.delete(replaying);
    replaying.then(forget, forget);
    return replaying;
  }

  private async replayAll(type: string, options: ReplayDeadLettersOptions | undefined): Promise<number> {
    this.deps.assertOpen();
    assertMessageType(type);
    const limit = limitOption(options, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw invalidArgument('options.signal', 'an AbortSignal', signal);
    }
    this.deps.noteDeadLetterType(type);
    let replayed = 0;
    while (replayed < limit && !signal?.aborted && !this.closed.signal.aborted) {
      const waiting = await this.peek(type, Math.min(REPLAY_CHUNK, limit - replayed), 'replay');
      if (waiting.length === 0) break;
      const done = await this.replayChunk(type, waiting.length, signal);
      replayed += done;
      if (done < waiting.length) break;
    }
    return replayed;
  }

  /** Called by the manager's close: stops running replays and waits for them to hand back. */
  async close(): Promise<void> {
    this.closed.abort();
    await Promise.allSettled([...this.replays]);
  }

  private async peek(type: string, limit: number, what: string): Promise<Envelope[]> {
    const transport = this.deps.transport();
    if (typeof transport.peek !== 'function') {
      throw new PlugmqError(
        'UNSUPPORTED',
        `the ${this.deps.driver} driver cannot ${what} dead letters at rest (its transport has no peek)`,
      );
    }
    return transport.peek(type, DEAD_LETTER_GROUP, limit);
  }

  /**
   * Takes up to `count` dead letters through one transport subscription of the reserved group,
   * one at a time so the original order is kept. Deliveries past `count` (or after a failure) are
   * held and handed back once the subscription stopped, as core does on close: handed back at
   * once, they would come straight back to this subscription.
   */
  private replayChunk(type: string, count: number, signal: AbortSignal | undefined): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let taken = 0;
      let replayed = 0;
      let failure: unknown;
      let finished = false;
      let chain: Promise<void> = Promise.resolve();
      let idle: NodeJS.Timeout | undefined;
      let subscribing: Promise<TransportSubscription> | undefined;
      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopping ??= subscribing
          ? subscribing.then((subscription) => subscription.stop())
          : Promise.resolve();
        return stopping;
      };
      const held: { delivery: Delivery; settled: () => void }[] = [];
      const handBack = async () => {
        for (const { delivery, settled } of held.splice(0)) {
          await Promise.resolve()
            .then(() => delivery.release())
            .catch(() => {});
          settled();
        }
      };
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(idle);
        signal?.removeEventListener('abort', finish);
        this.closed.signal.removeEventListener('abort', finish);
        void chain
          .then(stop)
          .catch((error: unknown) => {
            failure ??= error;
          })
          .then(handBack)
          .then(() => (failure === undefined ? resolve(replayed) : reject(failure)));
      };
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(finish, REPLAY_IDLE_MS);
        idle.unref?.();
      };
      const replayOne = async (delivery: Delivery, settled: () => void): Promise<void> => {
        if (finished || failure !== undefined) {
          held.push({ delivery, settled });
          return;
        }
        try {
          await this.deps.send(replayEnvelope(type, delivery.envelope), signal);
        } catch (error) {
          failure = error;
          held.push({ delivery, settled });
          return finish();
        }
        // Stop before the last ack: acked first, it frees a prefetch slot and the broker sends one
        // more, which is then handed back (to the back of a quorum queue, out of order).
        if (replayed + 1 >= count) void stop().catch(() => {});
        try {
          await delivery.ack();
        } catch (error) {
          // Published but still stored: a later replay sends it again (at least once).
          failure = error;
          settled();
          return finish();
        }
        settled();
        replayed++;
        if (replayed >= count) finish();
        else armIdle();
      };
      const deliver = toDeliverFn(
        (delivery: Delivery): Promise<void> =>
          new Promise<void>((settled) => {
            if (finished || taken >= count) {
              held.push({ delivery, settled });
              return;
            }
            taken++;
            chain = chain.then(() => replayOne(delivery, settled));
          }),
      );
      signal?.addEventListener('abort', finish, { once: true });
      this.closed.signal.addEventListener('abort', finish, { once: true });
      subscribing = this.deps
        .transport()
        .subscribe(
          { types: [type], group: DEAD_LETTER_GROUP, concurrency: 1, startFrom: 'earliest' },
          deliver,
        );
      subscribing.then(
        () => {
          if (!finished && taken === 0) armIdle();
        },
        (error: unknown) => {
          failure ??= error;
          finish();
        },
      );
    });
  }

  private record(type: string, envelope: Envelope): DeadLetterRecord {
    const headers = envelope.headers;
    const attempts = Number.parseInt(headers[DEAD_LETTER_HEADERS.attempts] ?? '', 10);
    let body: unknown;
    let decodeError: string | undefined;
    try {
      body = this.deps.codecs.decodeEnvelope(envelope);
    } catch (error) {
      body = envelope.body;
      decodeError = describeError(error);
    }
    return {
      id: envelope.id,
      type,
      originalType: headers[DEAD_LETTER_HEADERS.originalType],
      error: headers[DEAD_LETTER_HEADERS.error],
      attempts: Number.isNaN(attempts) ? undefined : attempts,
      ...(envelope.key === undefined ? {} : { key: envelope.key }),
      headers: applicationHeaders(headers),
      body,
      ...(decodeError === undefined ? {} : { decodeError }),
      timestamp: envelope.timestamp,
    };
  }
}

/**
 * The dead letter as its original message again: same id, body, key, timestamp and application
 * headers, attempt 1. Mandatory, so a replay into a type nobody consumes fails instead of losing it.
 */
function replayEnvelope(deadLetterType: string, envelope: Envelope): OutgoingEnvelope {
  const originalType = envelope.headers[DEAD_LETTER_HEADERS.originalType];
  if (originalType === undefined || originalType.length === 0) {
    throw new PlugmqError(
      'PUBLISH_FAILED',
      `dead letter ${envelope.id} of ${deadLetterType} has no ${DEAD_LETTER_HEADERS.originalType} header: there is no type to replay it to`,
    );
  }
  return {
    id: envelope.id,
    type: originalType,
    ...(envelope.key === undefined ? {} : { key: envelope.key }),
    timestamp: envelope.timestamp,
    headers: applicationHeaders(envelope.headers),
    contentType: envelope.contentType,
    body: envelope.body,
    ...(envelope.value === undefined ? {} : { value: envelope.value }),
    ...(envelope.priority === undefined ? {} : { priority: envelope.priority }),
    attempt: 1,
    mandatory: true,
  };
}

function limitOption(
  options: { readonly limit?: number } | undefined,
  fallback: number,
  max: number,
): number {
  if (options === undefined) return fallback;
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  const { limit } = options;
  if (limit === undefined) return fallback;
  if (!isInteger(limit) || limit < 1 || limit > max) {
    const allowed = Number.isFinite(max) ? `an integer from 1 to ${max}` : 'a positive integer';
    throw invalidArgument('options.limit', allowed, limit);
  }
  return limit;
}
