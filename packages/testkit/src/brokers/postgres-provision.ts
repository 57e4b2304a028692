import { localPostgresProblem, postgresBinDir, postgresUnavailable, postgresUrlFromEnv } from './postgres.js';
import { maskUrl, type ProvisionMode } from './provision-plan.js';

// PostgreSQL's part of the provisioning step (provision.ts): the outbox's tests need one. The same
// order as the brokers: PLUGMQ_POSTGRES_URL, a container, else the local server, installed with
// apt (tools/brokers/provision.sh postgresql) when missing and this machine can. Without one, auto
// mode goes on (the outbox tests are skipped and say why); under CI (all) the run stops.

export async function provisionPostgres(
  mode: ProvisionMode,
  aptProblem: string | undefined,
  install: (what: string) => Promise<void>,
  fail: (message: string) => Error,
): Promise<string> {
  const url = postgresUrlFromEnv();
  if (url) return `[brokers] postgres: PLUGMQ_POSTGRES_URL ${maskUrl(url)}`;
  const wantsLocal = mode === 'all' || postgresUnavailable() !== undefined;
  if (wantsLocal && localPostgresProblem() && mode !== 'check') {
    if (aptProblem) {
      const why = `no PostgreSQL for the outbox tests (${localPostgresProblem()}) and ${aptProblem}`;
      if (mode === 'all')
        throw fail(`[brokers] postgres: ${why}; install postgresql or set PLUGMQ_POSTGRES_URL`);
      return `[brokers] postgres: ${why}: the outbox tests are skipped`;
    }
    await install('postgresql');
  }
  const problem = postgresUnavailable();
  if (problem) return `[brokers] postgres: ${problem}: the outbox tests are skipped`;
  const local = localPostgresProblem();
  return `[brokers] postgres: ${local ? 'container' : `local server (${postgresBinDir()})`}`;
}
