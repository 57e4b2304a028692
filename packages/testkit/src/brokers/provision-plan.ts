import { isCI, urlVariable } from './env.js';
import type { BrokerKind } from './types.js';
import { KAFKA_VERSION } from './versions.js';

// The pure half of the repository's provisioning step (provision.ts): from what the machine has
// (a Survey) to what to install, or the one message for a machine that cannot provide.

/**
 * off: nothing; check: report only (installs nothing, never stops); auto: what no source covers;
 * all: also every local program and Chromium, as the suite runs them all under CI.
 */
export type ProvisionMode = 'off' | 'check' | 'auto' | 'all';

const MODES: readonly ProvisionMode[] = ['off', 'check', 'auto', 'all'];

/**
 * `PLUGMQ_PROVISION` when set; else all under CI=true; auto for the README's commands (`pnpm test`,
 * `pnpm test:faults`); check for a direct `vitest run <file>`, which must not start installing
 * brokers for a unit test, nor refuse to run one where no broker can be had.
 */
export function provisionMode(env: NodeJS.ProcessEnv = process.env): ProvisionMode {
  const value = env.PLUGMQ_PROVISION?.trim().toLowerCase() as ProvisionMode | undefined;
  if (value && MODES.includes(value)) return value;
  if (isCI(env)) return 'all';
  if (env.npm_lifecycle_event === 'test' || env.npm_lifecycle_event === 'test:faults') return 'auto';
  return 'check';
}

/** What one broker kind has on this machine right now; a string says why a source is not there. */
export interface KindSurvey {
  kind: BrokerKind;
  url?: string;
  /** The URL is set but its broker does not answer. */
  urlProblem?: string;
  /** Undefined when a container can be started. */
  containerProblem?: string;
  /** Undefined when the local programs are all there. */
  localProblem?: string;
  /** Whether installing the local programs needs apt (false: only Kafka's jars, fetched by Maven). */
  localNeedsApt: boolean;
}

export interface Survey {
  kinds: KindSurvey[];
  chromium: { path: string; present: boolean };
  /** Undefined when provision.sh may run apt-get here. */
  aptProblem?: string;
}

export interface Blocked {
  /** A broker kind, or 'chromium'. */
  what: string;
  why: string;
  /** Whether apt packages would fix it (not so for a URL that does not answer). */
  byApt: boolean;
  /** No source at all (so a container engine would fix it too). */
  noBroker?: boolean;
}

export interface Plan {
  /** provision.sh arguments, in order; each one a progress line. */
  install: string[];
  /** What cannot be had; non-empty means stop. */
  blocked: Blocked[];
}

/** `amqp://user:secret@host` → `amqp://user:***@host` (the testkit does not depend on core's helper). */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^/@\s:]*):([^/@\s]*)@/g, '$1:***@');
}

/** What to install, or what cannot be had. Pure: the survey says what is there. */
export function planProvision(survey: Survey, mode: ProvisionMode): Plan {
  const install: string[] = [];
  const blocked: Blocked[] = [];
  for (const k of survey.kinds) {
    if (k.url && k.urlProblem) {
      blocked.push({
        what: k.kind,
        why: `${urlVariable(k.kind)}=${maskUrl(k.url)} does not answer (${k.urlProblem}); start that broker or unset the variable`,
        byApt: false,
      });
    }
    const owned = k.containerProblem === undefined || k.localProblem === undefined;
    const wanted = !owned || (mode === 'all' && k.localProblem !== undefined);
    if (!wanted) continue;
    if (k.localNeedsApt && survey.aptProblem) {
      const why = [
        k.url ? undefined : `${urlVariable(k.kind)} is not set`,
        k.containerProblem,
        k.localProblem,
      ]
        .filter((s) => s !== undefined)
        .join('; ');
      blocked.push({
        what: k.kind,
        why: owned ? `its local-process tests need the local programs: ${k.localProblem}` : why,
        byApt: true,
        noBroker: !owned,
      });
    } else {
      install.push(k.kind);
    }
  }
  if (mode === 'all' && !survey.chromium.present) {
    if (survey.aptProblem || survey.chromium.path !== '/usr/bin/chromium') {
      blocked.push({
        what: 'chromium',
        why: `the dashboard's browser test needs it: nothing at ${survey.chromium.path}`,
        byApt: survey.chromium.path === '/usr/bin/chromium',
      });
    } else {
      install.push('chromium');
    }
  }
  return { install, blocked };
}

const APT_PACKAGES: Record<string, string> = {
  redis: 'redis-server redis-tools openssl',
  rabbitmq: 'rabbitmq-server',
  kafka: 'default-jre-headless maven',
  chromium: 'chromium fonts-dejavu-core',
};

/** The one message for a machine that cannot provide: what is missing and every way to fix it. */
export function blockedMessage(plan: Plan, survey: Survey, mode: ProvisionMode): string {
  const apt = Object.keys(APT_PACKAGES)
    .filter((what) => plan.blocked.some((b) => b.byApt && b.what === what))
    .map((what) => APT_PACKAGES[what])
    .join(' ');
  const lines = [
    `[brokers] the tests cannot start: ${survey.aptProblem ? `nothing here can provide what they need, and ${survey.aptProblem}` : 'a broker is unavailable'}.`,
    ...plan.blocked.map((b) => `  - ${b.what}: ${b.why}`),
    'Any one of these fixes it; then run the tests again:',
  ];
  if (apt) {
    lines.push(
      '  - run them as root on Debian/Ubuntu (they install the missing programs with apt), or install them:',
      `      sudo apt-get install --no-install-recommends ${apt}`,
    );
    if (plan.blocked.some((b) => b.byApt && b.what === 'kafka')) {
      lines.push(
        `    (the tests then fetch Kafka ${KAFKA_VERSION}'s jars with Maven themselves, no root needed)`,
      );
    }
  }
  if (plan.blocked.some((b) => b.noBroker)) {
    lines.push(
      '  - start Docker (or podman: pnpm brokers:images): the tests run the brokers in containers',
      '  - PLUGMQ_REDIS_URL / PLUGMQ_RABBITMQ_URL / PLUGMQ_KAFKA_URL name your own brokers for most tests;',
      '    the restart/kill and fault tests still need one of the above',
    );
  }
  if (mode === 'all') {
    lines.push(
      '  (CI=true or PLUGMQ_PROVISION=all: the local-process variants and the browser test must run too)',
    );
  } else {
    lines.push('  - PLUGMQ_PROVISION=off skips this check (tests without a broker are then skipped or fail)');
  }
  return lines.join('\n');
}
