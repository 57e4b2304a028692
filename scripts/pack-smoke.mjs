#!/usr/bin/env node
// `pnpm test:pack` (after `pnpm build`): what a user gets from npm, checked outside the workspace.
// 1. `pnpm pack` every package (workspace: ranges become real ones; none may be left).
// 2. publint (strict) and @arethetypeswrong/cli on every tarball: both must report nothing.
// 3. A throwaway npm project in the temp dir with only @plugmq/core + @plugmq/adapter-memory:
//    an ESM script and a CommonJS script publish and consume through createQueueManager({ driver:
//    'memory' }); a TypeScript file using the public types compiles with tsc under node16 (ESM and
//    CJS files) and bundler resolution; no broker client (amqplib, kafkajs, ioredis) is installed.
// 4. A second throwaway project with every tarball: each package's engines.node holds for its
//    whole dependency tree, its ESM and CJS entries load (testkit: inside a vitest run, its peer),
//    and the `plugmq` bin answers --help.
// Prints each tarball's size and core's minified+gzipped size. Bounded: every command has a
// timeout and the whole run stops after PACK_SMOKE_TIMEOUT_MS (default 170 s).
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import semver from 'semver';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BROKER_CLIENTS = ['amqplib', 'kafkajs', 'ioredis'];
const started = Date.now();
const deadline = Number(process.env.PACK_SMOKE_TIMEOUT_MS ?? 170_000);
const keep = process.env.PACK_SMOKE_KEEP === '1';
const work = mkdtempSync(join(tmpdir(), 'plugmq-pack-'));
const failures = [];
let checks = 0;

const watchdog = setTimeout(() => {
  console.error(`pack-smoke: gave up after ${deadline} ms (PACK_SMOKE_TIMEOUT_MS)`);
  cleanup();
  process.exit(1);
}, deadline);
watchdog.unref();

function cleanup() {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (line) => console.log(`[${elapsed()}] ${line}`);

function check(name, ok, detail = '') {
  checks++;
  if (ok) log(`ok   ${name}`);
  else {
    failures.push(name);
    log(`FAIL ${name}${detail ? `\n${detail.trimEnd()}` : ''}`);
  }
}

/** Runs a command; resolves { code, out } (stdout + stderr), never rejects. */
function run(command, args, { cwd = root, timeout = 120_000, env } = {}) {
  return new Promise((done) => {
    execFile(
      command,
      args,
      { cwd, timeout, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        const timedOut = error?.killed ? `\n(killed after ${timeout} ms)` : '';
        done({ code, out: `${stdout}${stderr}${timedOut}` });
      },
    );
  });
}

/** Runs `tasks` (functions returning promises) at most `limit` at a time. */
async function pool(tasks, limit) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

// ---------------------------------------------------------------------------------------------
// 1. pack

const packages = readdirSync(join(root, 'packages'))
  .filter((dir) => existsSync(join(root, 'packages', dir, 'package.json')))
  .map((dir) => {
    const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
    return { dir, name: manifest.name, version: manifest.version, private: manifest.private === true };
  })
  .filter((pkg) => !pkg.private);

const unbuilt = packages.filter((pkg) => !existsSync(join(root, 'packages', pkg.dir, 'dist')));
if (unbuilt.length > 0) {
  console.error(`pack-smoke: run \`pnpm build\` first (no dist in ${unbuilt.map((p) => p.dir).join(', ')})`);
  process.exit(1);
}

const tarballDir = join(work, 'tarballs');
mkdirSync(tarballDir);
log(`packing ${packages.length} packages into ${tarballDir}`);
const packed = await run('pnpm', [
  '-r',
  '--filter',
  './packages/*',
  'pack',
  '--pack-destination',
  tarballDir,
]);
if (packed.code !== 0) {
  console.error(packed.out);
  console.error('pack-smoke: pnpm pack failed');
  cleanup();
  process.exit(1);
}
const tarballOf = (pkg) =>
  join(tarballDir, `${pkg.name.replace('@', '').replace('/', '-')}-${pkg.version}.tgz`);
for (const pkg of packages) {
  pkg.tarball = tarballOf(pkg);
  check(`${pkg.name}: tarball`, existsSync(pkg.tarball), `missing ${pkg.tarball}`);
}
if (failures.length > 0) finish();

// ---------------------------------------------------------------------------------------------
// 2. publint + attw (in parallel with the installs below)

async function lintTarball(pkg) {
  const tarball = readFileSync(pkg.tarball);
  const { messages, pkg: manifest } = await publint({
    pack: { tarball: tarball.buffer.slice(tarball.byteOffset, tarball.byteOffset + tarball.byteLength) },
    strict: true,
  });
  check(
    `${pkg.name}: publint`,
    messages.length === 0,
    messages.map((m) => `  ${m.type}: ${formatMessage(m, manifest)}`).join('\n'),
  );
  const leftovers = JSON.stringify(manifest).match(/"[^"]+":"workspace:[^"]*"/g) ?? [];
  check(
    `${pkg.name}: no workspace: ranges in the packed package.json`,
    leftovers.length === 0,
    leftovers.join('\n'),
  );
  const listed = (await run('tar', ['-tzf', pkg.tarball])).out.split('\n');
  for (const file of ['LICENSE', 'README.md', 'CHANGELOG.md']) {
    check(`${pkg.name}: ships ${file}`, listed.includes(`package/${file}`));
  }
  const attw = await run(
    bin('attw'),
    [pkg.tarball, '--no-definitely-typed', '--no-color', '--no-emoji', '-f', 'table-flipped'],
    { timeout: 90_000 },
  );
  check(
    `${pkg.name}: attw`,
    attw.code === 0 && !/problems? found|error/i.test(attw.out.replace(/No problems found/i, '')),
    attw.out,
  );
}

const lints = pool(
  packages.map((pkg) => () => lintTarball(pkg)),
  2,
);

// ---------------------------------------------------------------------------------------------
// 3. core + adapter-memory in a plain npm project

const byName = Object.fromEntries(packages.map((pkg) => [pkg.name, pkg]));
const npmInstall = (cwd, tarballs, extra = []) =>
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...extra, ...tarballs], {
    cwd,
    timeout: 150_000,
  });

function project(name) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `plugmq-${name}`, private: true }, null, 2)}\n`,
  );
  return dir;
}

/** Every package directory under node_modules (nested ones too), as names. */
function installedPackages(nodeModules, found = new Set()) {
  if (!existsSync(nodeModules)) return found;
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    const names = entry.startsWith('@')
      ? readdirSync(join(nodeModules, entry)).map((n) => `${entry}/${n}`)
      : [entry];
    for (const name of names) {
      found.add(name);
      installedPackages(join(nodeModules, name, 'node_modules'), found);
    }
  }
  return found;
}

const ESM_SCRIPT = `import assert from 'node:assert/strict';
import { createQueueManager, isPlugmqError, registeredDrivers } from '@plugmq/core';

// Before any adapter is imported: the installed ones are named all the same.
const typo = await createQueueManager({ driver: 'memroy' }).catch((error) => error);
assert.ok(isPlugmqError(typo) && typo.code === 'DRIVER_NOT_FOUND', String(typo));
assert.match(typo.message, /did you mean "memory"\\?; available drivers: (?:[a-z-]+, )*memory\\b/, typo.message);
const queue = await createQueueManager({ driver: 'memory' });
const received = new Promise((resolve, reject) => {
  queue.consume('smoke.esm', async (message) => resolve(message), { group: 'smoke' }).catch(reject);
});
const id = await queue.publish('smoke.esm', { hello: 'esm' });
const message = await received;
assert.deepEqual(message.body, { hello: 'esm' });
assert.equal(message.id, id);
assert.ok(registeredDrivers().includes('memory'));
await queue.close();
const missing = await createQueueManager({ driver: 'nope' }).catch((error) => error);
assert.ok(isPlugmqError(missing) && missing.code === 'DRIVER_NOT_FOUND', String(missing));
console.log('esm ok', id);
`;

const CJS_SCRIPT = `const assert = require('node:assert/strict');
const core = require('@plugmq/core');

(async () => {
  const typo = await core.createQueueManager({ driver: 'memroy' }).catch((error) => error);
  assert.match(typo.message, /did you mean "memory"\\?; available drivers: (?:[a-z-]+, )*memory\\b/, typo.message);
  // The driver is found by name from CommonJS, and loaded with require (one copy of core).
  const queue = await core.createQueueManager({ driver: 'memory' });
  assert.ok(require.cache[require.resolve('@plugmq/adapter-memory')], 'adapter-memory was not loaded through require');
  const received = new Promise((resolve, reject) => {
    queue.consume('smoke.cjs', async (message) => resolve(message), { group: 'smoke' }).catch(reject);
  });
  const id = await queue.publish('smoke.cjs', { hello: 'cjs' });
  const message = await received;
  assert.deepEqual(message.body, { hello: 'cjs' });
  assert.equal(message.id, id);
  await queue.close();

  const { driver } = require('@plugmq/adapter-memory');
  assert.equal(driver.name, 'memory');
  core.registerDriver(driver);
  const again = await core.createQueueManager({ driver: 'memory', namespace: 'cjs-2' });
  const got = new Promise((resolve) => { again.consume('smoke.cjs2', async (m) => resolve(m.body), { group: 'g' }); });
  await again.publish('smoke.cjs2', 'second');
  assert.equal(await got, 'second');
  await again.close();
  console.log('cjs ok', id);
})().catch((error) => { console.error(error); process.exit(1); });
`;

const TS_SOURCE = `import {
  type Consumer,
  type ConsumerManager,
  createQueueManager,
  isPlugmqError,
  type Message,
  PlugmqError,
  type QueueManager,
  registerDriver,
} from '@plugmq/core';
import { driver } from '@plugmq/adapter-memory';

interface OrderCreated {
  orderId: string;
  total: number;
}

registerDriver(driver);

export async function main(): Promise<string> {
  const queue: QueueManager = await createQueueManager({ driver: 'memory', publishTimeoutMs: 5_000 });
  await queue.consume<OrderCreated>(
    'orders.created',
    async (message: Message<OrderCreated>) => {
      const total: number = message.body.total;
      if (total < 0) throw new PlugmqError('INVALID_ARGUMENT', 'negative total');
    },
    { group: 'billing', concurrency: 2, retry: { maxAttempts: 3, initialDelayMs: 10 } },
  );
  const id: string = await queue.publish<OrderCreated>('orders.created', { orderId: 'A-1', total: 3 }, { key: 'c-9' });
  await queue.close();
  return id;
}

export const invoices: Consumer<OrderCreated> = {
  types: ['orders.created'],
  group: 'invoicing',
  async handle(message) {
    message.body.orderId.toUpperCase();
  },
};

export function register(consumers: ConsumerManager): void {
  consumers.register(invoices);
}

export function code(error: unknown): string | undefined {
  return isPlugmqError(error) ? error.code : undefined;
}
`;

function tsconfig(dir, name, options, files) {
  writeFileSync(
    join(dir, name),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
          ...options,
        },
        files,
      },
      null,
      2,
    )}\n`,
  );
}

async function coreAndMemory() {
  const dir = project('core-memory');
  const installed = await npmInstall(dir, [
    byName['@plugmq/core'].tarball,
    byName['@plugmq/adapter-memory'].tarball,
  ]);
  check('npm install @plugmq/core + @plugmq/adapter-memory', installed.code === 0, installed.out);
  if (installed.code !== 0) return;

  const tree = installedPackages(join(dir, 'node_modules'));
  const clients = BROKER_CLIENTS.filter((name) => tree.has(name));
  check(
    `core + adapter-memory install no broker client (${tree.size} packages: ${[...tree].sort().join(', ')})`,
    clients.length === 0,
    `installed: ${clients.join(', ')}`,
  );

  writeFileSync(join(dir, 'esm.mjs'), ESM_SCRIPT);
  writeFileSync(join(dir, 'cjs.cjs'), CJS_SCRIPT);
  const esm = await run('node', ['esm.mjs'], { cwd: dir, timeout: 30_000 });
  check(
    'ESM: import @plugmq/core, publish and consume on memory',
    esm.code === 0 && esm.out.includes('esm ok'),
    esm.out,
  );
  const cjs = await run('node', ['cjs.cjs'], { cwd: dir, timeout: 30_000 });
  check(
    'CJS: require @plugmq/core (driver found by name) and @plugmq/adapter-memory',
    cjs.code === 0 && cjs.out.includes('cjs ok'),
    cjs.out,
  );

  writeFileSync(join(dir, 'app.mts'), TS_SOURCE);
  writeFileSync(join(dir, 'app.cts'), TS_SOURCE);
  writeFileSync(join(dir, 'app.ts'), TS_SOURCE);
  tsconfig(dir, 'tsconfig.node16.json', { module: 'node16', moduleResolution: 'node16' }, [
    'app.mts',
    'app.cts',
  ]);
  tsconfig(dir, 'tsconfig.bundler.json', { module: 'esnext', moduleResolution: 'bundler' }, ['app.ts']);
  for (const mode of ['node16', 'bundler']) {
    const result = await run('node', [tsc, '-p', `tsconfig.${mode}.json`], { cwd: dir, timeout: 60_000 });
    check(
      `tsc --noEmit, moduleResolution ${mode}${mode === 'node16' ? ' (.mts and .cts)' : ''}`,
      result.code === 0,
      result.out,
    );
  }
}

/** Where `name` resolves from `fromDir` (node's node_modules walk). */
function resolvePackageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', ...name.split('/'));
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The lowest Node version `pkgDir`'s engines.node admits must satisfy engines.node of everything it
 * installs (dependencies and optional dependencies, transitively; peers are the user's choice).
 */
function enginesProblems(pkgDir) {
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const floor = semver.minVersion(manifest.engines?.node ?? '*');
  const problems = [];
  if (!manifest.engines?.node) problems.push(`${manifest.name} states no engines.node`);
  const seen = new Set();
  const queue = [pkgDir];
  while (queue.length > 0) {
    const dir = queue.shift();
    if (seen.has(dir)) continue;
    seen.add(dir);
    const dep = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const range = dep.engines?.node;
    if (range && !semver.satisfies(floor, range)) {
      problems.push(`${manifest.name} admits Node ${floor}, but ${dep.name}@${dep.version} needs ${range}`);
    }
    for (const name of Object.keys({ ...dep.dependencies, ...dep.optionalDependencies })) {
      const found = resolvePackageDir(name, dir);
      if (found) queue.push(found);
      else if (!dep.optionalDependencies?.[name]) problems.push(`${dep.name}: ${name} is not installed`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// 4. every tarball in one npm project: each entry loads from ESM and CJS

async function everything() {
  const dir = project('all');
  const installed = await npmInstall(
    dir,
    packages.map((pkg) => pkg.tarball),
    ['--ignore-scripts'],
  );
  check(`npm install all ${packages.length} tarballs`, installed.code === 0, installed.out);
  if (installed.code !== 0) return;
  for (const pkg of packages) {
    const problems = enginesProblems(join(dir, 'node_modules', ...pkg.name.split('/')));
    check(
      `${pkg.name}: engines.node holds for its whole dependency tree`,
      problems.length === 0,
      problems.join('\n'),
    );
  }
  for (const pkg of packages) {
    if (pkg.name === '@plugmq/testkit') continue; // vitest refuses to load outside a vitest run: below
    const esm = await run(
      'node',
      ['--input-type=module', '-e', `await import(${JSON.stringify(pkg.name)})`],
      { cwd: dir, timeout: 30_000 },
    );
    const cjs = await run('node', ['-e', `require(${JSON.stringify(pkg.name)})`], {
      cwd: dir,
      timeout: 30_000,
    });
    check(
      `${pkg.name}: loads with import and require`,
      esm.code === 0 && cjs.code === 0,
      `${esm.out}${cjs.out}`,
    );
  }
  // Every package's published types compile (skipLibCheck off): ESM and CJS under node16, and
  // bundler. testkit only as ESM: vitest's own CommonJS types refuse require.
  const importAll = (names) =>
    names.map((name, i) => `import * as p${i} from '${name}';\nexport { p${i} };\n`).join('');
  writeFileSync(join(dir, 'all.mts'), importAll(packages.map((pkg) => pkg.name)));
  writeFileSync(join(dir, 'all.ts'), importAll(packages.map((pkg) => pkg.name)));
  writeFileSync(
    join(dir, 'all.cts'),
    importAll(packages.filter((pkg) => pkg.name !== '@plugmq/testkit').map((pkg) => pkg.name)),
  );
  tsconfig(dir, 'tsconfig.node16.json', { module: 'node16', moduleResolution: 'node16' }, [
    'all.mts',
    'all.cts',
  ]);
  tsconfig(dir, 'tsconfig.bundler.json', { module: 'esnext', moduleResolution: 'bundler' }, ['all.ts']);
  for (const mode of ['node16', 'bundler']) {
    const result = await run('node', [tsc, '-p', `tsconfig.${mode}.json`], { cwd: dir, timeout: 60_000 });
    check(`every package's types compile, moduleResolution ${mode}`, result.code === 0, result.out);
  }

  writeFileSync(
    join(dir, 'testkit.test.mjs'),
    `import { expect, test } from 'vitest';
import { describeWithBroker, runConformance } from '@plugmq/testkit';
test('@plugmq/testkit loads in a vitest run', () => {
  expect(typeof runConformance).toBe('function');
  expect(typeof describeWithBroker).toBe('function');
});
`,
  );
  const vitest = await run(
    join(dir, 'node_modules', '.bin', 'vitest'),
    ['run', '--root', dir, 'testkit.test.mjs'],
    {
      cwd: dir,
      timeout: 60_000,
    },
  );
  check('@plugmq/testkit: loads in a vitest run (its peer)', vitest.code === 0, vitest.out);
  const help = await run(join(dir, 'node_modules', '.bin', 'plugmq'), ['--help'], {
    cwd: dir,
    timeout: 30_000,
  });
  check('plugmq --help (the installed bin)', help.code === 0, help.out);
}

await Promise.all([lints, coreAndMemory(), everything()]);

// ---------------------------------------------------------------------------------------------
// sizes

function kb(bytes) {
  return `${(bytes / 1024).toFixed(1)} kB`;
}
console.log('\npacked sizes:');
for (const pkg of packages) {
  const listed = await run('tar', ['-tzf', pkg.tarball]);
  const files = listed.out.split('\n').filter((line) => line && !line.endsWith('/')).length;
  console.log(`  ${pkg.name.padEnd(26)} ${kb(statSync(pkg.tarball).size).padStart(10)}  (${files} files)`);
}
const coreEntry = join(root, 'packages', 'core', 'dist', 'index.js');
const own = await build({
  entryPoints: [coreEntry],
  minify: true,
  write: false,
  format: 'esm',
  logLevel: 'silent',
});
const bundled = await build({
  entryPoints: [coreEntry],
  bundle: true,
  platform: 'node',
  format: 'esm',
  minify: true,
  write: false,
  logLevel: 'silent',
});
const ownCode = own.outputFiles[0].contents;
const bundledCode = bundled.outputFiles[0].contents;
console.log(
  `\n@plugmq/core ESM entry minified: ${kb(ownCode.length)}, +gzip: ${kb(gzipSync(ownCode).length)}` +
    ` (bundled with its dependencies: ${kb(bundledCode.length)}, +gzip: ${kb(gzipSync(bundledCode).length)})`,
);

finish();

function finish() {
  cleanup();
  if (failures.length > 0) {
    console.log(
      `\npack-smoke: ${failures.length} of ${checks} checks failed (${elapsed()}):\n  ${failures.join('\n  ')}`,
    );
    process.exit(1);
  }
  console.log(`\npack-smoke: all ${checks} checks passed (${elapsed()})`);
  process.exit(0);
}
