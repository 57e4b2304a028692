import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { applyContainerDefaults, podmanSocket } from '../src/brokers/env.js';
import { kafkaLibs } from '../src/brokers/local-recipes.js';
import { aptProblem } from '../src/brokers/provision.js';
import {
  blockedMessage,
  type KindSurvey,
  planProvision,
  provisionMode,
  type Survey,
} from '../src/brokers/provision-plan.js';

// The provisioning step of `pnpm test` (vitest globalSetup): what it installs, and the one message
// it stops with when nothing here can provide a broker.

const root = fileURLToPath(new URL('../../../', import.meta.url));

function kind(k: Partial<KindSurvey> & Pick<KindSurvey, 'kind'>): KindSurvey {
  return { localNeedsApt: false, ...k };
}

const NO_ENGINE = 'no container engine reachable (DOCKER_HOST=unset): none found';

function survey(kinds: KindSurvey[], over: Partial<Survey> = {}): Survey {
  return { kinds, chromium: { path: '/usr/bin/chromium', present: true }, ...over };
}

const everythingLocal = survey([
  kind({ kind: 'redis' }),
  kind({ kind: 'rabbitmq' }),
  kind({ kind: 'kafka' }),
]);

const nothing = (aptProblemText?: string) =>
  survey(
    (['redis', 'rabbitmq', 'kafka'] as const).map((k) =>
      kind({
        kind: k,
        containerProblem: NO_ENGINE,
        localProblem: `${k} is not installed`,
        localNeedsApt: true,
      }),
    ),
    { chromium: { path: '/usr/bin/chromium', present: false }, aptProblem: aptProblemText },
  );

describe('planProvision', () => {
  it('installs nothing when every broker is there, in either mode', () => {
    expect(planProvision(everythingLocal, 'auto')).toEqual({ install: [], blocked: [] });
    expect(planProvision(everythingLocal, 'all')).toEqual({ install: [], blocked: [] });
  });

  it('on a bare machine installs every kind as root, and names every package when it cannot', () => {
    expect(planProvision(nothing(), 'auto')).toEqual({
      install: ['redis', 'rabbitmq', 'kafka'],
      blocked: [],
    });
    expect(planProvision(nothing(), 'all').install).toEqual(['redis', 'rabbitmq', 'kafka', 'chromium']);
    const bare = nothing('no apt-get on PATH (the installs are Debian/Ubuntu packages)');
    const plan = planProvision(bare, 'all');
    expect(plan.install).toEqual([]);
    expect(plan.blocked.map((b) => b.what)).toEqual(['redis', 'rabbitmq', 'kafka', 'chromium']);
    const message = blockedMessage(plan, bare, 'all');
    expect(message).toContain(
      'sudo apt-get install --no-install-recommends redis-server redis-tools openssl rabbitmq-server default-jre-headless maven chromium fonts-dejavu-core\n',
    );
    expect(message).toContain("fetch Kafka 3.9.2's jars with Maven themselves");
    expect(message).toContain('start Docker');
  });

  it('with a container engine but no apt, blocks only the local-process needs of CI, without suggesting Docker', () => {
    const s = survey(
      [kind({ kind: 'redis', localProblem: 'redis-server is not installed', localNeedsApt: true })],
      {
        aptProblem: 'installing needs root (apt-get), and this is uid 1000',
      },
    );
    expect(planProvision(s, 'auto')).toEqual({ install: [], blocked: [] });
    const plan = planProvision(s, 'all');
    expect(plan.blocked.map((b) => b.why)).toEqual([
      'its local-process tests need the local programs: redis-server is not installed',
    ]);
    expect(blockedMessage(plan, s, 'all')).not.toContain('start Docker');
  });

  it('with a container engine, installs the local programs and chromium only under CI/all', () => {
    const containers = survey(
      (['redis', 'rabbitmq', 'kafka'] as const).map((k) =>
        kind({ kind: k, localProblem: 'not installed', localNeedsApt: true }),
      ),
      { chromium: { path: '/usr/bin/chromium', present: false } },
    );
    expect(planProvision(containers, 'auto')).toEqual({ install: [], blocked: [] });
    expect(planProvision(containers, 'all').install).toEqual(['redis', 'rabbitmq', 'kafka', 'chromium']);
  });

  it('installs a local broker next to a URL: the restart/kill tests need one they own', () => {
    const plan = planProvision(
      survey([
        kind({
          kind: 'redis',
          url: 'redis://127.0.0.1:6379',
          containerProblem: NO_ENGINE,
          localProblem: 'x',
        }),
        kind({ kind: 'rabbitmq' }),
        kind({ kind: 'kafka' }),
      ]),
      'auto',
    );
    expect(plan).toEqual({ install: ['redis'], blocked: [] });
  });

  it('stops on a URL whose broker does not answer, without showing its password', () => {
    const plan = planProvision(
      survey([
        kind({ kind: 'redis' }),
        kind({ kind: 'rabbitmq', url: 'amqp://app:s3cret@127.0.0.1:1', urlProblem: 'ECONNREFUSED' }),
        kind({ kind: 'kafka' }),
      ]),
      'auto',
    );
    expect(plan.blocked).toHaveLength(1);
    expect(plan.blocked[0]?.why).toContain('PLUGMQ_RABBITMQ_URL=amqp://app:***@127.0.0.1:1 does not answer');
    expect(JSON.stringify(plan)).not.toContain('s3cret');
  });

  it('without root fetches Kafka jars (Maven, no apt) but blocks what needs apt', () => {
    const s = survey(
      [
        kind({
          kind: 'redis',
          containerProblem: NO_ENGINE,
          localProblem: 'redis-server',
          localNeedsApt: true,
        }),
        kind({ kind: 'rabbitmq' }),
        kind({ kind: 'kafka', containerProblem: NO_ENGINE, localProblem: 'jars', localNeedsApt: false }),
      ],
      { aptProblem: 'installing needs root (apt-get), and this is uid 1000' },
    );
    const plan = planProvision(s, 'auto');
    expect(plan.install).toEqual(['kafka']);
    expect(plan.blocked.map((b) => b.what)).toEqual(['redis']);
    const message = blockedMessage(plan, s, 'auto');
    expect(message).toContain('this is uid 1000');
    expect(message).toContain('start Docker');
    expect(message).toContain(
      'sudo apt-get install --no-install-recommends redis-server redis-tools openssl\n',
    );
  });
});

describe('provisionMode', () => {
  it('provisions for the README commands and CI, only reports for a direct vitest run', () => {
    expect(provisionMode({ npm_lifecycle_event: 'test' })).toBe('auto');
    expect(provisionMode({ npm_lifecycle_event: 'test:faults' })).toBe('auto');
    expect(provisionMode({ CI: 'true', npm_lifecycle_event: 'test' })).toBe('all');
    expect(provisionMode({})).toBe('check');
    expect(provisionMode({ PLUGMQ_PROVISION: 'off', CI: 'true' })).toBe('off');
    expect(provisionMode({ PLUGMQ_PROVISION: 'all' })).toBe('all');
  });
});

describe('aptProblem', () => {
  it('needs root', () => {
    // This machine has apt-get (tools/brokers installs with it); a non-root uid cannot use it.
    expect(aptProblem(1000)).toBe('installing needs root (apt-get), and this is uid 1000');
  });
});

describe('the places tools/brokers uses', () => {
  it('PLUGMQ_PODMAN_SOCKET moves the podman socket the testkit falls back to', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plugmq-socket-'));
    try {
      const socket = join(dir, 'podman.sock');
      await writeFile(socket, '');
      const env: NodeJS.ProcessEnv = { PLUGMQ_PODMAN_SOCKET: socket };
      expect(podmanSocket(env)).toBe(socket);
      expect(podmanSocket({})).toBe('/run/plugmq-podman.sock');
      applyContainerDefaults(env);
      expect(env.DOCKER_HOST).toBe(`unix://${socket}`);
      expect(env.PLUGMQ_REDIS_IMAGE).toBe('plugmq/redis:7.0-local');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("Kafka's jars default to $PLUGMQ_CACHE/kafka-libs-<version>, like lib.sh", () => {
    const saved = { cache: process.env.PLUGMQ_CACHE, libs: process.env.PLUGMQ_KAFKA_LIBS };
    try {
      delete process.env.PLUGMQ_KAFKA_LIBS;
      process.env.PLUGMQ_CACHE = '/srv/cache';
      expect(kafkaLibs()).toBe('/srv/cache/kafka-libs-3.9.2');
      process.env.PLUGMQ_KAFKA_LIBS = '/opt/kafka-libs';
      expect(kafkaLibs()).toBe('/opt/kafka-libs');
    } finally {
      for (const [key, value] of [
        ['PLUGMQ_CACHE', saved.cache],
        ['PLUGMQ_KAFKA_LIBS', saved.libs],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

// testcontainers always tries the default Docker sockets, whatever DOCKER_HOST says: with Docker
// here, a child process cannot be made to find no container engine.
const dockerHere = ['/var/run/docker.sock', `/run/user/${process.getuid?.()}/docker.sock`].some((p) =>
  existsSync(p),
);

/** Runs vitest on one unit-test file in a child process; never rejects. */
async function vitestChild(env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return promisify(execFile)(
    process.execPath,
    [join(root, 'node_modules/vitest/vitest.mjs'), 'run', 'packages/core/test/ids.test.ts'],
    { cwd: root, timeout: 60_000, env },
  ).then(
    (r) => ({ code: 0, output: r.stdout + r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      output: err.stdout + err.stderr,
    }),
  );
}

describe('pnpm test where nothing can provide a broker', () => {
  it.skipIf(dockerHere)(
    'stops before any test file with one message saying what to install',
    async () => {
      // A PATH with node alone: no apt-get, redis-server, epmd, java or podman; no Docker socket.
      const bin = await mkdtemp(join(tmpdir(), 'plugmq-provision-'));
      try {
        await symlink(process.execPath, join(bin, 'node'));
        const env: NodeJS.ProcessEnv = {
          PATH: bin,
          HOME: bin,
          DOCKER_HOST: `unix://${join(bin, 'docker.sock')}`,
          PLUGMQ_PODMAN_SOCKET: join(bin, 'podman.sock'),
          PLUGMQ_KAFKA_LIBS: join(bin, 'kafka-libs'),
          PLUGMQ_CHROMIUM: join(bin, 'chromium'),
        };
        // What `pnpm test` sets for the vitest it runs.
        const { code, output } = await vitestChild({ ...env, npm_lifecycle_event: 'test' });
        expect(code, output).toBe(1);
        expect(output.match(/the tests cannot start/g)).toHaveLength(1);
        expect(output).toContain('no apt-get on PATH');
        for (const k of ['redis', 'rabbitmq', 'kafka']) expect(output).toMatch(new RegExp(`\\n  - ${k}: `));
        expect(output).toContain(
          'sudo apt-get install --no-install-recommends redis-server redis-tools openssl rabbitmq-server default-jre-headless maven\n',
        );
        // No test file started, so no error per file and no stack trace.
        expect(output).not.toContain('BrokerUnavailableError');
        expect(output).not.toMatch(/\n\s+at /);
        expect(output).not.toContain('Test Files');

        // A direct `vitest run <file>` only reports, and runs the file.
        const direct = await vitestChild(env);
        expect(direct.code, direct.output).toBe(0);
        expect(direct.output).toContain('[brokers] redis: no broker the tests own');
        expect(direct.output).toMatch(/Test Files\s+1 passed/);
      } finally {
        await rm(bin, { recursive: true, force: true });
      }
    },
    90_000,
  );
});
