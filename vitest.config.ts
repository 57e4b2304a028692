import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = fileURLToPath(new URL('./packages/', import.meta.url));

// One root config: every package's tests run in one `vitest run`, against the packages' sources
// (so a test never sees a stale build). Broker suites provision their own brokers through
// @plugmq/testkit, so the order of files does not matter.
export default defineConfig({
  resolve: {
    alias: [{ find: /^@plugmq\/([a-z-]+)$/, replacement: `${packages}$1/src/index.ts` }],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
  },
});
