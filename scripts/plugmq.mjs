#!/usr/bin/env node
// pnpm plugmq <command> — the plugmq CLI from the workspace. Builds the packages first when a
// fresh clone has no build yet (the CLI runs from packages/cli/dist), then hands over.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const needed = ['core', 'adapter-memory', 'metrics', 'dashboard', 'cli'].map(
  (name) => new URL(`../packages/${name}/dist/index.js`, import.meta.url),
);
if (needed.some((file) => !existsSync(file))) {
  process.stderr.write('plugmq: building the workspace first (pnpm run build)…\n');
  const build = spawnSync('pnpm', ['run', 'build'], {
    stdio: ['ignore', 2, 2],
    shell: process.platform === 'win32',
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
await import(new URL('../packages/cli/dist/bin.js', import.meta.url).href);
