import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `pnpm test:faults`: the fault suite (testkit's runFaultSuite) on every driver. Apart from
// `pnpm test` because it restarts, kills and floods brokers and takes minutes. One file per
// driver, two files at a time (2 cores; each file owns its broker, so they never meet). Sizes:
// FAULT_STREAM (default 10 000) and FAULT_FLOOD (default 1 000 000 memory, 200 000 brokers);
// see docs/GUARANTEES.md. Built from the base config (not mergeConfig, which would add the base's
// include and exclude to these instead of replacing them).
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['packages/*/test/faults/**/*.test.ts'],
    exclude: [...configDefaults.exclude],
    testTimeout: 600_000,
    hookTimeout: 180_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: Number(process.env.FAULT_WORKERS ?? 2), minForks: 1 } },
    fileParallelism: true,
  },
});
