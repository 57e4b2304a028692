import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const packages = fileURLToPath(new URL('./packages/', import.meta.url));

// One root config: every package's tests run in one `vitest run`, against the packages' sources
// (so a test never sees a stale build). Broker suites start their own brokers through
// @plugmq/testkit, so the order of files does not matter.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@plugmq\/core\/driver$/, replacement: `${packages}core/src/kit.ts` },
      { find: /^@plugmq\/([a-z-]+)$/, replacement: `${packages}$1/src/index.ts` },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    // The fault suite runs on its own: `pnpm test:faults` (vitest.faults.config.ts).
    exclude: [...configDefaults.exclude, 'packages/*/test/faults/**'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    // Two files at a time, as the fault suite runs: vitest's default (cores - 1) is one file at a
    // time on a 2-core machine, and most files wait on their brokers, not the CPU (the unit phase
    // of CI took 27 min so). TEST_WORKERS overrides.
    pool: 'forks',
    poolOptions: { forks: { maxForks: Number(process.env.TEST_WORKERS ?? 2), minForks: 1 } },
    // Before any file runs, under `pnpm test`/`test:faults` or CI: every broker the suite needs,
    // installed if missing (or one message saying what to install), one line per broker. A direct
    // `vitest run <file>` only prints the lines. PLUGMQ_PROVISION overrides (off/check/auto/all).
    globalSetup: ['packages/testkit/src/brokers/provision.ts'],
  },
});
