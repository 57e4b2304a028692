import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Launch, missingProgram, type Recipe, recipeFor } from './local-recipes.js';
import { waitUntilServes } from './probe.js';
import { release, remember } from './reaper.js';
import { track, trackProcessGroup, untrack, untrackProcessGroup } from './registry.js';
import type { BrokerHandle, BrokerKind, BrokerProvider, ProxiedListener } from './types.js';

// Brokers as local processes, the fallback where no container engine exists. Each runs in its own
// process group (detached), so stop/kill reach the whole tree (RabbitMQ is sh → erl → beam.smp).

const STOP_GRACE_MS = 30_000;

/** A local process group the testkit started; also used by the cluster starters. */
export class Running {
  readonly exited: Promise<void>;
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  done = false;
  private readonly ledgerKey: string;

  constructor(
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${logFile}`);
    this.ledgerKey = remember({ pgid: pid });
    trackProcessGroup(pid);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.signal = signal;
        this.done = true;
        // Kill stragglers of the group (e.g. erl_child_setup) before forgetting it.
        signalGroup(pid, 'SIGKILL');
        untrackProcessGroup(pid);
        release(this.ledgerKey);
        resolve();
      });
    });
  }

  signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid !== undefined && !this.done) signalGroup(this.child.pid, signal);
  }

  /** Asks nicely, then insists after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.done) return;
    this.signalGroup('SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  describeExit(): string {
    let tail = '';
    try {
      const lines = readFileSync(this.logFile, 'utf8').split('\n');
      // The cause is often logged well before the last lines (a broker goes on shutting down).
      const errors = lines.filter((line) => /\b(ERROR|FATAL)\b|Exception|Error:/.test(line)).slice(-10);
      tail = [
        ...(errors.length > 0 ? ['errors logged:', ...errors, 'last lines:'] : []),
        ...lines.slice(-25),
      ].join('\n');
    } catch {
      // No log yet.
    }
    return `exited (code ${this.exitCode}, signal ${this.signal}); log ${this.logFile}:\n${tail}`;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Group already gone.
  }
}

export function launch(l: Launch, logFile: string, dir: string): Running {
  const log = openSync(logFile, 'a');
  const child = spawn(l.command, l.args, {
    cwd: dir,
    env: l.env ?? process.env,
    detached: true,
    stdio: ['ignore', log, log],
  });
  child.unref();
  return new Running(child, logFile);
}

class ProcessBroker implements BrokerHandle {
  readonly source = 'process' as const;
  readonly url: string;
  readonly proxied: ProxiedListener | undefined;
  readonly managementUrl: string | undefined;
  private helpers: Running[] = [];
  private broker: Running | undefined;
  private stopped = false;

  constructor(
    readonly kind: BrokerKind,
    private readonly recipe: Recipe,
    private readonly dir: string,
    private readonly dirKey: string,
    private readonly timeoutMs: number,
  ) {
    this.url = recipe.url;
    this.proxied = recipe.proxied;
    this.managementUrl = recipe.managementUrl;
  }

  async startAll(): Promise<void> {
    this.helpers = this.recipe.helpers.map((h, i) => launch(h, join(this.dir, `helper-${i}.log`), this.dir));
    if (this.recipe.prepare) {
      const { command, args, env } = this.recipe.prepare;
      await promisify(execFile)(command, args, { cwd: this.dir, env: env ?? process.env });
    }
    await this.startBroker();
  }

  private async startBroker(): Promise<void> {
    const running = launch(this.recipe.broker, join(this.dir, `${this.kind}.log`), this.dir);
    this.broker = running;
    await waitUntilServes(this.kind, this.url, this.timeoutMs, async () =>
      running.done ? running.describeExit() : undefined,
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    untrack(this);
    // The data is deleted next, so there is nothing to shut down gracefully for.
    await Promise.all([this.broker, ...this.helpers].map((r) => r?.stop(0)));
    await rm(this.dir, { recursive: true, force: true });
    release(this.dirKey);
  }

  async restart(): Promise<void> {
    await this.broker?.stop(STOP_GRACE_MS);
    try {
      await this.startBroker();
    } catch (error) {
      // A broker that exits while starting on its own data dir (seen once: Kafka, exit code 1, no
      // cause in its log) is the broker's failure, not the client's under test: started once more,
      // said on stderr; a second failure fails the test.
      if (!this.broker?.done) throw error;
      process.stderr.write(
        `[plugmq/testkit] ${this.kind} restart: ${String(error)}\nstarting it once more\n`,
      );
      await this.startBroker();
    }
  }

  async kill(): Promise<void> {
    if (!this.broker || this.broker.done) return;
    this.broker.signalGroup('SIGKILL');
    await this.broker.exited;
  }
}

export const processProvider: BrokerProvider = {
  source: 'process',

  async unavailableReason(kind) {
    return missingProgram(kind);
  },

  async start(kind, options) {
    const dir = await mkdtemp(join(tmpdir(), `plugmq-${kind}-`));
    const dirKey = remember({ dir });
    const broker = new ProcessBroker(
      kind,
      await recipeFor(kind, dir, options),
      dir,
      dirKey,
      options.startupTimeoutMs ?? 120_000,
    );
    track(broker);
    try {
      await broker.startAll();
    } catch (err) {
      await broker.stop().catch(() => undefined);
      throw err;
    }
    return broker;
  },
};
