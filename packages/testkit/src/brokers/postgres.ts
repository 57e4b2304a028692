import { execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GenericContainer, Wait } from 'testcontainers';
import { applyContainerDefaults, podmanSocket } from './env.js';
import { which } from './local-recipes.js';
import { freePort } from './ports.js';
import { Running } from './process.js';
import { release, remember } from './reaper.js';

// PostgreSQL for the outbox's tests, in the brokers' order: PLUGMQ_POSTGRES_URL, else a container
// (where the official image can be pulled, or PLUGMQ_POSTGRES_IMAGE names one), else a local
// process of the Debian binaries on a free loopback port, with its own data dir under a temp dir.
// Not a BrokerKind: no driver runs on it, so the conformance suites and broker lists stay as they are.

const run = promisify(execFile);
const START_TIMEOUT_MS = 60_000;
const DEFAULT_IMAGE = 'postgres:15-alpine';

export interface PostgresHandle {
  /** `postgres://plugmq@127.0.0.1:<port>/postgres` (trust authentication) or PLUGMQ_POSTGRES_URL. */
  readonly url: string;
  readonly source: 'env' | 'container' | 'local';
  /** Stops and removes what startPostgres started; nothing for an env URL. */
  stop(): Promise<void>;
  /**
   * A local server only (the fault suite's): fast shutdown (if running) and start again on the
   * same port and data directory; resolves once it accepts connections.
   */
  restart?(): Promise<void>;
  /** A local server only: SIGKILL, leaving it down until restart(). */
  kill?(): Promise<void>;
}

export function postgresUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.PLUGMQ_POSTGRES_URL?.trim() || undefined;
}

/** The directory with initdb/postgres/pg_isready: PLUGMQ_POSTGRES_BIN, Debian's newest, or PATH. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.PLUGMQ_POSTGRES_BIN?.trim();
  if (explicit) return existsSync(join(explicit, 'initdb')) ? explicit : undefined;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const initdb = which('initdb');
  return initdb ? join(initdb, '..') : undefined;
}

/** PostgreSQL refuses to run as root: under root the server runs as the `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error('running as root and there is no postgres user to run the server as');
  }
  return { uid: Number(uid), gid: Number(gid) };
}

/** Why no local PostgreSQL can be started here, or undefined when one can. */
export function localPostgresProblem(): string | undefined {
  if (!postgresBinDir()) return 'the PostgreSQL server is not installed (apt-get install postgresql)';
  try {
    serverUser();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

function containerWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.PLUGMQ_POSTGRES_IMAGE) return true;
  applyContainerDefaults(env);
  // PlugMQ's podman holds locally built images only: the official one cannot be pulled there.
  return env.DOCKER_HOST !== `unix://${podmanSocket(env)}`;
}

async function startContainer(): Promise<PostgresHandle> {
  const image = process.env.PLUGMQ_POSTGRES_IMAGE ?? DEFAULT_IMAGE;
  const name = `plugmq-postgres-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const key = remember({ container: name });
  try {
    const started = await new GenericContainer(image)
      .withName(name)
      .withEnvironment({
        POSTGRES_USER: 'plugmq',
        POSTGRES_HOST_AUTH_METHOD: 'trust',
        POSTGRES_DB: 'postgres',
      })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .withStartupTimeout(START_TIMEOUT_MS)
      .start();
    const url = `postgres://plugmq@${started.getHost()}:${started.getMappedPort(5432)}/postgres`;
    return {
      url,
      source: 'container',
      async stop() {
        await started.stop({ remove: true, removeVolumes: true });
        release(key);
      },
    };
  } catch (err) {
    release(key);
    throw err;
  }
}

/** A local PostgreSQL process this caller owns (never PLUGMQ_POSTGRES_URL's): the fault suite's. */
export async function startLocalPostgres(): Promise<PostgresHandle> {
  return startLocal();
}

async function startLocal(): Promise<PostgresHandle> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(localPostgresProblem());
  const user = serverUser();
  const dir = await mkdtemp(join(tmpdir(), 'plugmq-pg-'));
  const dirKey = remember({ dir });
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const as = user ? { uid: user.uid, gid: user.gid } : {};
  const env = { ...process.env, LC_ALL: 'C', HOME: dir };
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'plugmq', '-A', 'trust', '-E', 'UTF8', '--no-sync'], {
    ...as,
    env,
    timeout: START_TIMEOUT_MS,
  });
  const port = await freePort();
  const logFile = join(dir, 'postgres.log');
  const out = openSync(logFile, 'a');
  if (user) chownSync(logFile, user.uid, user.gid);
  // fsync off: a SIGKILLed server (the fault suite's) loses nothing the OS holds. Commits stay
  // synchronous, though: with synchronous_commit=off a commit's WAL can still be in the killed
  // server's memory, and a publish that resolved would be lost.
  const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'];
  for (const s of ['fsync=off', 'full_page_writes=off', 'max_connections=200']) {
    args.push('-c', s);
  }
  const launch = () =>
    new Running(
      spawn(join(bin, 'postgres'), args, { ...as, env, detached: true, stdio: ['ignore', out, out] }),
      logFile,
    );
  let server = launch();
  const stop = async () => {
    // SIGTERM (smart shutdown) lets clients that are just disconnecting go cleanly: a fast shutdown
    // would send them a FATAL that pg raises as an uncaught error. Then fast, then kill.
    server.signalGroup('SIGTERM');
    const fast = setTimeout(() => server.signalGroup('SIGINT'), 3_000);
    const kill = setTimeout(() => server.signalGroup('SIGKILL'), 10_000);
    await server.exited;
    clearTimeout(fast);
    clearTimeout(kill);
    await rm(dir, { recursive: true, force: true });
    release(dirKey);
  };
  const ready = async () => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const up = await run(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'plugmq'], {
        timeout: 5_000,
      }).then(
        () => true,
        () => false,
      );
      if (up) return;
      if (server.done || Date.now() > deadline) {
        const log = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
        await stop();
        throw new Error(`local PostgreSQL did not start on 127.0.0.1:${port}:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await ready();
  const kill = async () => {
    server.signalGroup('SIGKILL');
    await server.exited;
  };
  const restart = async () => {
    // Fast shutdown: the clients of a fault test are connected and would hold a smart one open.
    server.signalGroup('SIGINT');
    const timer = setTimeout(() => server.signalGroup('SIGKILL'), 10_000);
    await server.exited;
    clearTimeout(timer);
    server = launch();
    await ready();
  };
  return { url: `postgres://plugmq@127.0.0.1:${port}/postgres`, source: 'local', stop, restart, kill };
}

/**
 * A PostgreSQL the caller owns until `stop()`: PLUGMQ_POSTGRES_URL, else a container, else a local
 * process (a failed container start falls back to it, as brokers do).
 */
export async function startPostgres(): Promise<PostgresHandle> {
  const url = postgresUrlFromEnv();
  if (url) return { url, source: 'env', stop: async () => {} };
  if (containerWanted()) {
    try {
      return await startContainer();
    } catch (err) {
      if (localPostgresProblem()) throw err;
    }
  }
  return startLocal();
}

/** Whether startPostgres can succeed here; a reason when it cannot (tests skip with it). */
export function postgresUnavailable(): string | undefined {
  if (postgresUrlFromEnv() || process.env.PLUGMQ_POSTGRES_IMAGE) return undefined;
  const local = localPostgresProblem();
  if (local && !containerWanted()) return local;
  return undefined;
}
