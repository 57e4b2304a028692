import { PlugmqError } from './errors.js';

/** Turns bodies into bytes and back. The content type travels with each message. */
export interface Codec {
  readonly contentType: string;
  encode(body: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

export const JSON_CONTENT_TYPE = 'application/json';
export const RAW_CONTENT_TYPE = 'application/octet-stream';
/** Marks an envelope whose `value` is the body object itself (in-process transports only). */
export const VALUE_CONTENT_TYPE = 'application/x-plugmq-value';

const EMPTY = new Uint8Array(0);

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** JSON, the default. `undefined` travels as zero bytes and decodes back to `undefined`. */
export const jsonCodec: Codec = {
  contentType: JSON_CONTENT_TYPE,
  encode(body) {
    if (body === undefined) return EMPTY;
    let text: string | undefined;
    try {
      text = JSON.stringify(body);
    } catch (cause) {
      throw new PlugmqError('INVALID_ARGUMENT', 'body must be JSON-serialisable or a Uint8Array', { cause });
    }
    if (text === undefined) {
      throw new PlugmqError(
        'INVALID_ARGUMENT',
        `body must be JSON-serialisable or a Uint8Array (got ${typeof body})`,
      );
    }
    return Buffer.from(text, 'utf8');
  },
  decode(bytes) {
    if (bytes.byteLength === 0) return undefined;
    return JSON.parse(asBuffer(bytes).toString('utf8'));
  },
};

/** Raw bytes: a `Uint8Array` (or Buffer) body is sent as it is and arrives as a `Uint8Array`. */
export const rawCodec: Codec = {
  contentType: RAW_CONTENT_TYPE,
  encode(body) {
    if (!(body instanceof Uint8Array)) throw new PlugmqError('INVALID_ARGUMENT', 'body must be a Uint8Array');
    return body;
  },
  decode(bytes) {
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  },
};

/** Picks codecs by body on publish and by content type on delivery. */
export class CodecRegistry {
  private readonly byContentType = new Map<string, Codec>();

  constructor(extra: readonly Codec[] = []) {
    for (const codec of [jsonCodec, rawCodec, ...extra]) this.byContentType.set(codec.contentType, codec);
  }

  encode(body: unknown): { contentType: string; bytes: Uint8Array } {
    const codec = body instanceof Uint8Array ? rawCodec : jsonCodec;
    return { contentType: codec.contentType, bytes: codec.encode(body) };
  }

  /** Throws DECODE_FAILED; the dispatcher dead-letters such messages. */
  decode(contentType: string, bytes: Uint8Array): unknown {
    const codec = this.byContentType.get(contentType || JSON_CONTENT_TYPE);
    if (!codec)
      throw new PlugmqError('DECODE_FAILED', `no codec for content type ${JSON.stringify(contentType)}`);
    try {
      return codec.decode(bytes);
    } catch (cause) {
      throw new PlugmqError('DECODE_FAILED', `body is not valid ${codec.contentType}: ${String(cause)}`, {
        cause,
      });
    }
  }
}
