import { randomUUID } from 'node:crypto';
import {
  type Codec,
  DEAD_LETTER_HEADERS,
  describeError,
  type Handler,
  type HandlerContext,
  JSON_CONTENT_TYPE,
  type Logger,
  type Message,
  PlugmqError,
  type PublishBatchItem,
  type PublishOptions,
  type QueueManager,
  RAW_CONTENT_TYPE,
  silentLogger,
} from '@plugmq/core/driver';
import type { PayloadStore } from './store.js';

/** The headers a claim-checked message carries instead of its body. */
export const CLAIM_CHECK_HEADERS = {
  /** The payload store key. */
  ref: 'x-plugmq-claim-check',
  /** The content type of the stored bytes (JSON, raw bytes, or a codec's). */
  contentType: 'x-plugmq-claim-check-content-type',
  /** The stored body's size in bytes. */
  bytes: 'x-plugmq-claim-check-bytes',
} as const;

export const DEFAULT_THRESHOLD_BYTES = 256 * 1024;
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export interface ClaimCheckOptions {
  readonly store: PayloadStore;
  /** Bodies whose encoded size is over this go to the store (default 256 KiB). */
  readonly thresholdBytes?: number;
  /**
   * Per type: another threshold, or `false` to never claim-check the type (and skip the extra
   * encoding that measuring a body costs).
   */
  readonly types?: Readonly<Record<string, { readonly thresholdBytes: number | false }>>;
  /** How long the store keeps a payload (default 7 days): longer than any retry or dead-letter wait. */
  readonly retentionMs?: number;
  /**
   * Delete a payload once a handler settled its message successfully. Only safe where exactly one
   * group consumes each claim-checked type: another group would find the payload gone. Never
   * deletes for a dead letter or a failed handler (a retry, a replay still needs the payload).
   */
  readonly deleteAfterHandled?: boolean;
  /** Codecs of content types other than JSON and raw bytes that stored bodies may have. */
  readonly codecs?: readonly Codec[];
  /** For store failures that do not fail the message (a delete after success). Default silent. */
  readonly logger?: Logger;
}

/** What `withClaimCheck` returns: the same manager, with claim-checked publishes. */
export interface ClaimCheckedManager extends QueueManager {
  /** Removes the consume-side middleware from the wrapped manager (later consumes only). */
  detach(): void;
}

interface Encoded {
  readonly bytes: Uint8Array;
  readonly contentType: string;
}

interface Checked {
  readonly ref: string;
  readonly body: unknown;
  readonly headers: Record<string, string>;
}

function positive(value: number | undefined, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new PlugmqError(
      'INVALID_ARGUMENT',
      `options.${field} must be a finite number >= 0 (got ${String(value)})`,
    );
  }
  return value;
}

/**
 * Wraps a manager so that bodies over the threshold are put in `options.store` and published as a
 * small reference; every subscription the manager starts afterwards fetches the body back before
 * its handler runs. Publish through the returned manager; consume through either.
 */
export function withClaimCheck(queue: QueueManager, options: ClaimCheckOptions): ClaimCheckedManager {
  const inner = queue;
  const store = options?.store;
  if (
    !store ||
    typeof store.put !== 'function' ||
    typeof store.get !== 'function' ||
    typeof store.delete !== 'function'
  ) {
    throw new PlugmqError('INVALID_ARGUMENT', 'options.store must be a PayloadStore (put, get, delete)');
  }
  const threshold = positive(options.thresholdBytes, 'thresholdBytes', DEFAULT_THRESHOLD_BYTES);
  const retentionMs = positive(options.retentionMs, 'retentionMs', DEFAULT_RETENTION_MS);
  const perType = new Map<string, number>();
  for (const [type, override] of Object.entries(options.types ?? {})) {
    const value = override?.thresholdBytes;
    perType.set(
      type,
      value === false ? Number.POSITIVE_INFINITY : positive(value, `types.${type}.thresholdBytes`, threshold),
    );
  }
  const codecs = new Map<string, Codec>((options.codecs ?? []).map((codec) => [codec.contentType, codec]));
  const logger = options.logger ?? silentLogger;

  /**
   * The encoded body when it is over the threshold, else undefined. Synchronous: a body published
   * as it is costs no promise of claim-check's own.
   */
  const oversized = (type: string, body: unknown): Encoded | undefined => {
    const limit = perType.get(type) ?? threshold;
    if (limit === Number.POSITIVE_INFINITY || body === undefined) return undefined;
    let bytes: Uint8Array;
    let contentType: string;
    if (body instanceof Uint8Array) {
      if (body.byteLength <= limit) return undefined;
      bytes = body;
      contentType = RAW_CONTENT_TYPE;
    } else {
      let text: string | undefined;
      try {
        text = JSON.stringify(body);
      } catch {
        return undefined; // core's publish refuses it with its own INVALID_ARGUMENT
      }
      // UTF-8 takes at most 3 bytes per UTF-16 unit: most small bodies need no byte count.
      if (text === undefined || text.length * 3 <= limit) return undefined;
      bytes = Buffer.from(text, 'utf8');
      if (bytes.byteLength <= limit) return undefined;
      contentType = JSON_CONTENT_TYPE;
    }
    return { bytes, contentType };
  };

  /** Puts an oversized body in the store; what to publish instead. */
  const stash = async (type: string, { bytes, contentType }: Encoded): Promise<Checked> => {
    const ref = randomUUID();
    try {
      await store.put(ref, bytes, { ttlMs: retentionMs });
    } catch (error) {
      throw new PlugmqError(
        'PUBLISH_FAILED',
        `claim-check: storing the ${bytes.byteLength}-byte body of a ${type} message failed: ${describeError(error)}; nothing was sent`,
        { cause: error },
      );
    }
    return {
      ref,
      // Consumers without the middleware see what the message is instead of an empty body.
      body: { claimCheck: ref, bytes: bytes.byteLength, contentType },
      headers: {
        [CLAIM_CHECK_HEADERS.ref]: ref,
        [CLAIM_CHECK_HEADERS.contentType]: contentType,
        [CLAIM_CHECK_HEADERS.bytes]: String(bytes.byteLength),
      },
    };
  };

  const withHeaders = (options: PublishOptions | undefined, checked: Checked): PublishOptions => ({
    ...options,
    headers: { ...options?.headers, ...checked.headers },
  });

  /** A publish that failed leaves no payload behind (best effort: the retention time is the backstop). */
  const forget = async (refs: readonly string[]): Promise<void> => {
    await Promise.all(refs.map((ref) => store.delete(ref).catch(() => undefined)));
  };

  const decode = (contentType: string, bytes: Uint8Array): unknown => {
    if (contentType === JSON_CONTENT_TYPE)
      return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    if (contentType === RAW_CONTENT_TYPE)
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const codec = codecs.get(contentType);
    if (!codec) {
      throw new PlugmqError(
        'DECODE_FAILED',
        `claim-check: no codec for content type ${JSON.stringify(contentType)}; pass it in options.codecs`,
      );
    }
    return codec.decode(bytes);
  };

  // Not async: a message without a reference goes to the handler with no promise of ours.
  const handle =
    (next: Handler<unknown>): Handler<unknown> =>
    (message, context) => {
      const ref = message.headers[CLAIM_CHECK_HEADERS.ref];
      if (ref === undefined) return next(message, context);
      return fetchAndHandle(next, message, context, ref);
    };

  const fetchAndHandle = async (
    next: Handler<unknown>,
    message: Message<unknown>,
    context: HandlerContext,
    ref: string,
  ): Promise<void> => {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await store.get(ref);
    } catch (error) {
      throw new PlugmqError(
        'DECODE_FAILED',
        `claim-check: fetching payload ${ref} of message ${message.id} failed: ${describeError(error)}`,
        { cause: error },
      );
    }
    if (bytes === undefined) {
      throw new PlugmqError(
        'DECODE_FAILED',
        `claim-check: payload ${ref} of message ${message.id} (${message.type}) is not in the store: deleted, or older than the retention time`,
      );
    }
    const contentType = message.headers[CLAIM_CHECK_HEADERS.contentType] ?? JSON_CONTENT_TYPE;
    await next({ ...message, body: decode(contentType, bytes) }, context);
    // A dead letter's payload stays for a replay; the replayed message deletes it once handled.
    if (options.deleteAfterHandled && message.headers[DEAD_LETTER_HEADERS.originalType] === undefined) {
      await store.delete(ref).catch((error: unknown) => {
        logger.info(
          { ref, err: describeError(error) },
          'plugmq: claim-check delete failed; the retention time removes it',
        );
      });
    }
  };
  const detach = inner.use({ handle });

  const publishStashed = async (type: string, encoded: Encoded, publishOptions?: PublishOptions) => {
    const checked = await stash(type, encoded);
    try {
      return await inner.publish(type, checked.body, withHeaders(publishOptions, checked));
    } catch (error) {
      await forget([checked.ref]);
      throw error;
    }
  };

  return {
    driver: inner.driver,
    capabilities: inner.capabilities,
    events: inner.events,
    use: (middleware) => inner.use(middleware),
    subscriptionInfo: () => inner.subscriptionInfo(),
    // Dead letters keep the reference body: the payload stays in the store until its retention ends.
    inspect: (query) => inner.inspect(query),
    deadLetters: inner.deadLetters,
    detach,
    publish<T>(type: string, body: T, publishOptions?: PublishOptions): Promise<string> {
      let encoded: Encoded | undefined;
      try {
        encoded = oversized(type, body);
      } catch (error) {
        return Promise.reject(error);
      }
      if (!encoded) return inner.publish(type, body, publishOptions);
      return publishStashed(type, encoded, publishOptions);
    },
    async publishBatch<T>(items: PublishBatchItem<T>[]): Promise<string[]> {
      if (!Array.isArray(items)) return inner.publishBatch(items);
      // allSettled, not all: every payload stored before one put failed must be found and removed.
      const settled = await Promise.allSettled(
        items.map(async (item) => {
          if (typeof item !== 'object' || item === null) return { item, ref: undefined };
          const encoded = oversized(item.type, item.body);
          if (!encoded) return { item, ref: undefined };
          const checked = await stash(item.type, encoded);
          const options = withHeaders(item.options, checked);
          return { item: { ...item, body: checked.body as T, options }, ref: checked.ref };
        }),
      );
      const refs = settled.flatMap((result) =>
        result.status === 'fulfilled' && result.value.ref !== undefined ? [result.value.ref] : [],
      );
      try {
        const rewritten = settled.map((result) => {
          if (result.status === 'rejected') throw result.reason;
          return result.value.item;
        });
        return await inner.publishBatch(rewritten);
      } catch (error) {
        await forget(refs);
        throw error;
      }
    },
    consume: (types, handler, consumeOptions) => inner.consume(types, handler, consumeOptions),
    consumeBatch: (types, handler, batchOptions) => inner.consumeBatch(types, handler, batchOptions),
    request: (type, body, requestOptions) => inner.request(type, body, requestOptions),
    respond: (type, handler, respondOptions) => inner.respond(type, handler, respondOptions),
    health: () => inner.health(),
    close: () => inner.close(),
  };
}
