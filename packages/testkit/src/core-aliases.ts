import { dirname, join } from 'node:path';

/**
 * esbuild aliases that make a bundle use core's sources at `coreEntry` (its src/index.ts): the
 * application entry, and the driver kit (`@plugmq/core/driver`, src/kit.ts beside it) that
 * adapters import, so the bundle holds one copy of core.
 */
export function coreAliases(coreEntry: string): Record<string, string> {
  return { '@plugmq/core': coreEntry, '@plugmq/core/driver': join(dirname(coreEntry), 'kit.ts') };
}
