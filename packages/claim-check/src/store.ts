import { PlugmqError } from '@plugmq/core';

/**
 * Where claim-checked bodies live. Three calls, so an S3, GCS or database store is a short file:
 * keys are opaque strings of `[A-Za-z0-9._-]`, values are the encoded body bytes.
 */
export interface PayloadStore {
  /** Stores `bytes` under `key`, kept for at least `ttlMs` (after which the store may drop it). */
  put(key: string, bytes: Uint8Array, options: { readonly ttlMs: number }): Promise<void>;
  /** The bytes, or undefined when the key is unknown or its time ran out. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Removes the key; removing an unknown key is not an error. */
  delete(key: string): Promise<void>;
}

const KEY = /^[A-Za-z0-9._-]{1,200}$/;

/** Stores call this on every key, so a forged reference header cannot reach outside the store. */
export function assertPayloadKey(key: string): void {
  if (typeof key !== 'string' || !KEY.test(key) || key.startsWith('.')) {
    throw new PlugmqError(
      'INVALID_ARGUMENT',
      `payload key ${JSON.stringify(String(key)).slice(0, 80)} must be 1-200 characters of [A-Za-z0-9._-], not starting with '.'`,
    );
  }
}
