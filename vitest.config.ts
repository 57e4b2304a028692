import { defineConfig } from 'vitest/config';

// One root config: every package's tests run in one `vitest run`. Broker suites provision their
// own brokers through @plugmq/testkit, so the order of files does not matter.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
