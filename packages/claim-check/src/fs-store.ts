import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { PlugmqError } from '@plugmq/core';
import { assertPayloadKey, type PayloadStore } from './store.js';

export interface FilesystemPayloadStoreOptions {
  /** A directory every producer and consumer of the host can read and write; created if missing. */
  readonly directory: string;
  /** How often (at most) a put also removes expired payloads (default 60 000 ms). */
  readonly sweepIntervalMs?: number;
}

/**
 * One file per payload, for a single host (or a shared volume) and for tests. A file's mtime is
 * set to its expiry time, so expiry needs no index: get treats a past mtime as gone, and puts
 * sweep the directory now and then.
 */
export function filesystemPayloadStore(options: FilesystemPayloadStoreOptions): PayloadStore {
  const { directory } = options;
  if (typeof directory !== 'string' || directory === '') {
    throw new PlugmqError('INVALID_ARGUMENT', 'options.directory must be a non-empty path');
  }
  const sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
  let ready: Promise<unknown> | undefined;
  let lastSweep = Date.now();

  const sweep = async (): Promise<void> => {
    const now = Date.now();
    for (const name of await readdir(directory)) {
      if (name.startsWith('.')) continue; // partly written files of puts in progress
      const path = join(directory, name);
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtimeMs < now) await rm(path, { force: true });
    }
  };

  return {
    async put(key, bytes, { ttlMs }) {
      assertPayloadKey(key);
      ready ??= mkdir(directory, { recursive: true });
      await ready;
      // Written under a hidden name and renamed: a reader never sees half a payload.
      const partial = join(directory, `.${key}.${randomUUID()}`);
      const file = await open(partial, 'w');
      try {
        await file.writeFile(bytes);
      } finally {
        await file.close();
      }
      const expiresAt = new Date(Date.now() + ttlMs);
      await utimes(partial, expiresAt, expiresAt);
      await rename(partial, join(directory, key));
      if (Date.now() - lastSweep >= sweepIntervalMs) {
        lastSweep = Date.now();
        await sweep();
      }
    },
    async get(key) {
      assertPayloadKey(key);
      const path = join(directory, key);
      try {
        const info = await stat(path);
        if (info.mtimeMs < Date.now()) {
          await rm(path, { force: true });
          return undefined;
        }
        return await readFile(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
    async delete(key) {
      assertPayloadKey(key);
      await rm(join(directory, key), { force: true });
    },
  };
}
