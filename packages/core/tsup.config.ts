import { defineConfig } from 'tsup';

export default defineConfig({
  // Two entries share chunks (splitting on for CJS too), so an application importing `@plugmq/core`
  // and a driver importing `@plugmq/core/driver` use one copy of core's classes and registry.
  entry: ['src/index.ts', 'src/kit.ts'],
  splitting: true,
  // The CommonJS chunks must not contain `import.meta` (a syntax error there): shimmed.
  shims: true,
  // registry.ts asks which build it is in (see there).
  esbuildOptions(options, context) {
    options.define = { ...options.define, __PLUGMQ_CJS__: context.format === 'cjs' ? 'true' : 'false' };
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
