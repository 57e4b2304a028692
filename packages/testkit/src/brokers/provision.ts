import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { containerProvider } from './container.js';
import { imageVariable, podmanSocket, urlFromEnv, urlVariable } from './env.js';
import { kafkaLibs, missingProgram, which } from './local-recipes.js';
import { provisionPostgres } from './postgres-provision.js';
import { probeBroker } from './probe.js';
import {
  blockedMessage,
  type KindSurvey,
  maskUrl,
  type ProvisionMode,
  planProvision,
  provisionMode,
  type Survey,
} from './provision-plan.js';
import { BROKER_KINDS, type BrokerKind } from './types.js';
import { KAFKA_VERSION, LOCAL_IMAGES, OFFICIAL_IMAGES } from './versions.js';

// The provisioning step of this repository's `pnpm test`: the globalSetup of vitest.config.ts and
// vitest.faults.config.ts. Not part of the published testkit (index.ts does not export it): it runs
// tools/brokers/provision.sh, so there is one piece of code for installs (the one brokers:up uses).
//
// Before any test file starts, every broker kind must have a broker the tests own (a container or a
// local process: the restart/kill and fault tests never use a PLUGMQ_<KIND>_URL broker). Under
// CI=true (or PLUGMQ_PROVISION=all) the local programs and Chromium are needed too, since the suite
// runs its local-process variants and the browser test there instead of skipping them. What is
// missing is installed when this machine can (root and apt-get); otherwise the run stops here with
// one message saying what to install, instead of a BrokerUnavailableError in every test file.

const run = promisify(execFile);
const PROVISION_SH = fileURLToPath(new URL('../../../../tools/brokers/provision.sh', import.meta.url));
const INSTALL_TIMEOUT_MS = 20 * 60_000;
const URL_PROBE_MS = 3_000;

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

function kafkaJarPresent(): boolean {
  return existsSync(join(kafkaLibs(), `kafka_2.13-${KAFKA_VERSION}.jar`));
}

/** missingProgram plus what the Redis cluster and TLS tests run (redis-cli, openssl). */
export function localProblem(kind: BrokerKind): string | undefined {
  // Without its "(pnpm brokers:up … installs it)": here the advice is the message's own.
  const missing = missingProgram(kind)?.replace(/ \(pnpm brokers:up [^)]*\)$/, '');
  if (missing || kind !== 'redis') return missing;
  if (!which('redis-cli')) return 'redis-cli is not installed';
  if (!which('openssl')) return 'openssl is not installed';
  return undefined;
}

function localNeedsApt(kind: BrokerKind): boolean {
  if (kind === 'redis') return !which('redis-server') || !which('redis-cli') || !which('openssl');
  if (kind === 'rabbitmq') return !existsSync(RABBITMQ_SERVER) || !which('epmd');
  return !which('java') || (!kafkaJarPresent() && !which('mvn'));
}

export function aptProblem(uid: number | undefined = process.getuid?.()): string | undefined {
  if (!which('apt-get')) return 'no apt-get on PATH (the installs are Debian/Ubuntu packages)';
  if (uid !== 0) return `installing needs root (apt-get), and this is uid ${uid}`;
  if (!which('bash')) return 'no bash on PATH';
  return undefined;
}

async function surveyKind(kind: BrokerKind): Promise<KindSurvey> {
  const url = urlFromEnv(kind);
  const [urlProblem, containerProblem] = await Promise.all([
    url
      ? probeBroker(kind, url, URL_PROBE_MS).then(
          () => undefined,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        )
      : undefined,
    containerProvider.unavailableReason(kind),
  ]);
  return {
    kind,
    url,
    urlProblem,
    containerProblem,
    localProblem: localProblem(kind),
    localNeedsApt: localNeedsApt(kind),
  };
}

export async function surveyMachine(): Promise<Survey> {
  const path = process.env.PLUGMQ_CHROMIUM || '/usr/bin/chromium';
  return {
    kinds: await Promise.all(BROKER_KINDS.map(surveyKind)),
    chromium: { path, present: existsSync(path) },
    aptProblem: aptProblem(),
  };
}

function versionOfRabbitmq(): string {
  try {
    const dir = readdirSync('/usr/lib/rabbitmq/lib').find((d) => d.startsWith('rabbitmq_server-'));
    return dir ? ` ${dir.slice('rabbitmq_server-'.length)}` : '';
  } catch {
    return '';
  }
}

async function localDescription(kind: BrokerKind): Promise<string> {
  if (kind === 'redis') {
    const out = await run('redis-server', ['--version'], { timeout: 5_000 }).then(
      (r) => r.stdout,
      () => '',
    );
    const version = out.match(/v=(\S+)/)?.[1];
    return `local redis-server${version ? ` ${version}` : ''}`;
  }
  if (kind === 'rabbitmq') return `local rabbitmq-server${versionOfRabbitmq()}`;
  return `local Kafka ${KAFKA_VERSION} (${kafkaLibs().replace(homedir(), '~')})`;
}

/** One line per broker: the source the default-order tests get, and the local programs. */
async function describeKind(k: KindSurvey, mode: ProvisionMode): Promise<string> {
  const parts: string[] = [];
  if (k.url) parts.push(`${urlVariable(k.kind)} ${maskUrl(k.url)}`);
  if (k.containerProblem === undefined) {
    const image = process.env[imageVariable(k.kind)] ?? OFFICIAL_IMAGES[k.kind];
    parts.push(`container ${image} (${process.env.DOCKER_HOST ?? 'Docker'})`);
  }
  if (k.localProblem === undefined) parts.push(await localDescription(k.kind));
  else if (k.containerProblem !== undefined) {
    // Only in check mode: auto and all have installed it or stopped.
    parts.push(
      `no broker the tests own (${k.containerProblem}; ${k.localProblem}); \`pnpm test\` provisions one`,
    );
  } else if (mode !== 'all') {
    parts.push(`no local process (${k.localProblem}): its local-process tests are skipped`);
  }
  return `[brokers] ${k.kind}: ${parts.join('; ')}`;
}

const INSTALL_NOTES: Record<string, string> = {
  redis: 'redis-server, redis-tools, openssl (apt)',
  rabbitmq: 'rabbitmq-server with Erlang (apt, about a minute)',
  kafka: `a JRE and Maven (apt), then Kafka ${KAFKA_VERSION}'s jars from Maven Central (a few minutes)`,
  chromium: 'Debian chromium for the dashboard browser test (apt)',
  postgresql: "Debian's postgresql server for the outbox tests (apt)",
  'podman-service': `podman's API on unix://${podmanSocket()} (podman and the broker images are there)`,
};

async function installStep(what: string): Promise<void> {
  const t0 = Date.now();
  console.log(
    `[brokers] ${what}: ${what === 'podman-service' ? 'starting' : 'installing'} ${INSTALL_NOTES[what]}…`,
  );
  try {
    await run('bash', [PROVISION_SH, what], { timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    const tail = (e.stderr ?? '').trim().split('\n').slice(-20).join('\n');
    throw new ProvisionError(
      `[brokers] ${what}: failed (bash ${PROVISION_SH} ${what}):\n${tail || e.message}`,
    );
  }
  console.log(`[brokers] ${what}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/** A failure already worded for the user: printed as is, without a stack. */
export class ProvisionError extends Error {
  override name = 'ProvisionError';
}

/** Whether an engine's Docker-compatible API answers on a unix socket (GET /_ping). */
function apiAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 3_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Podman installed with PlugMQ's images but its API not serving (after a reboot): start it. Before
 * the first container check, because testcontainers reads DOCKER_HOST once per process.
 */
async function podmanWorthStarting(): Promise<boolean> {
  const socket = podmanSocket();
  const host = process.env.DOCKER_HOST;
  if ((host && host !== `unix://${socket}`) || existsSync('/var/run/docker.sock')) return false;
  if (!which('podman') || aptProblem() || (await apiAnswers(socket))) return false;
  const exists = await Promise.all(
    Object.values(LOCAL_IMAGES).map((image) =>
      run('podman', ['image', 'exists', image], { timeout: 20_000 }).then(
        () => true,
        () => false,
      ),
    ),
  );
  return exists.every(Boolean);
}

/** Checks, installs what is missing, prints one line per broker; throws ProvisionError if it cannot. */
export async function provisionBrokers(mode: ProvisionMode = provisionMode()): Promise<void> {
  if (mode === 'off') {
    console.log('[brokers] PLUGMQ_PROVISION=off: brokers not checked');
    return;
  }
  const t0 = Date.now();
  if (mode === 'check') {
    const survey = await surveyMachine();
    for (const k of survey.kinds) console.log(await describeKind(k, mode));
    console.log(await provisionPostgres(mode, survey.aptProblem, installStep, (m) => new ProvisionError(m)));
    return;
  }
  if (await podmanWorthStarting()) {
    // Without it the tests still have local processes; say why and go on.
    await installStep('podman-service').catch((err: Error) => console.log(err.message));
  }
  let survey = await surveyMachine();
  let plan = planProvision(survey, mode);
  if (plan.blocked.length > 0) throw new ProvisionError(blockedMessage(plan, survey, mode));
  if (plan.install.length > 0) {
    for (const what of plan.install) await installStep(what);
    survey = await surveyMachine();
    plan = planProvision(survey, mode);
    if (plan.blocked.length + plan.install.length > 0) {
      const left = [
        ...plan.blocked,
        ...plan.install.map((what) => ({ what, why: 'still missing after installing', byApt: true })),
      ];
      throw new ProvisionError(blockedMessage({ install: [], blocked: left }, survey, mode));
    }
  }
  for (const k of survey.kinds) console.log(await describeKind(k, mode));
  console.log(await provisionPostgres(mode, survey.aptProblem, installStep, (m) => new ProvisionError(m)));
  if (mode === 'all') console.log(`[brokers] chromium: ${survey.chromium.path}`);
  console.log(`[brokers] checked in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * vitest globalSetup. A ProvisionError ends the run here, before any test file, with its message
 * alone: thrown, vitest would print it with a stack trace.
 */
export default async function setup(): Promise<void> {
  try {
    await provisionBrokers();
  } catch (err) {
    if (!(err instanceof ProvisionError)) throw err;
    console.error(err.message);
    process.exit(1);
  }
}
