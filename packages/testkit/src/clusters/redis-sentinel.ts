import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '../brokers/ports.js';
import { release, remember } from '../brokers/reaper.js';
import { trackProcessGroup, untrackProcessGroup } from '../brokers/registry.js';
import type { ClusterHandle, ClusterNode, StartClusterOptions } from './types.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RedisSentinelOptions extends StartClusterOptions {
  /** Replicas of the master (default 2); the Sentinels promote one when the master fails. */
  replicas?: number;
  /** Sentinel processes (default 3, quorum a majority of them). */
  sentinels?: number;
  /** The master's name in the Sentinels' configuration (default `plugmq`). */
  masterName?: string;
  /**
   * `sentinel down-after-milliseconds` (default 1 000): a master silent this long is subjectively
   * down; a quorum agreeing makes it objectively down and starts the failover, which on loopback
   * ends about one to three seconds later.
   */
  downAfterMs?: number;
  /** true (default): AOF fsynced on every write on every data node; false: no persistence. */
  durable?: boolean;
}

export interface RedisSentinelNode extends ClusterNode {
  /** `master` or `replica`, as the node itself reports it (INFO replication). */
  role(): Promise<'master' | 'replica'>;
  /**
   * SIGSTOP: the process stays but neither reads nor answers (a replica stops taking the
   * replication stream, which piles up in its master); resume() sends SIGCONT.
   */
  pause(): void;
  resume(): void;
}

export interface RedisSentinelSet extends ClusterHandle<RedisSentinelNode> {
  readonly kind: 'redis-sentinel';
  /** `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,…/<masterName>`: what the Redis driver takes. */
  readonly url: string;
  readonly masterName: string;
  /** The Sentinel processes (a killed Sentinel can be started again like a data node). */
  readonly sentinels: readonly ClusterNode[];
  /**
   * The data node the Sentinels name as master (SENTINEL GET-MASTER-ADDR-BY-NAME, asked of each
   * running Sentinel until one answers), once it runs and reports `role:master`.
   */
  master(): Promise<RedisSentinelNode>;
  /**
   * Resolves with the master once the Sentinels name a running node other than `not` that
   * reports `role:master` (default limit 60 s): after killing `not`, the promoted replica.
   */
  waitForMaster(not?: RedisSentinelNode, timeoutMs?: number): Promise<RedisSentinelNode>;
  /** Resolves once every running replica of the master has its link up (default limit 60 s). */
  waitUntilSynced(timeoutMs?: number): Promise<void>;
}

/** One redis-cli call against a process; rejects when it does not answer within 5 s. */
async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 5_000,
  });
  return stdout;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not answering yet: same as "not yet".
    }
    if (Date.now() > deadline) throw new Error(`redis sentinel: ${what} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * One redis-server process (a data node, or a Sentinel with `--sentinel`) in its own process
 * group, so that kill() takes nothing else down. `args` is asked anew on every start: a data node
 * started again follows the current master instead of coming back as a second one.
 */
class Proc implements RedisSentinelNode {
  readonly host = '127.0.0.1';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private ledgerKey: string | undefined;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly dir: string,
    private readonly args: () => Promise<string[]>,
    private readonly startupTimeoutMs: number,
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  async launch(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const args = await this.args();
    const log = openSync(join(this.dir, 'redis.log'), 'a');
    const child = spawn('redis-server', args, { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${this.name}`);
    this.child = child;
    this.ledgerKey = remember({ pgid: pid });
    trackProcessGroup(pid);
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        untrackProcessGroup(pid);
        if (this.ledgerKey) release(this.ledgerKey);
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
    await until(`${this.name} answering PING`, this.startupTimeoutMs, async () => {
      if (this.child !== child)
        throw new Error(`${this.name} exited while starting; see ${this.dir}/redis.log`);
      return (await cli(this.port, 'PING')).includes('PONG');
    });
  }

  async role(): Promise<'master' | 'replica'> {
    const info = await cli(this.port, 'INFO', 'replication');
    return /role:master/.test(info) ? 'master' : 'replica';
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
    await this.exited;
  }

  pause(): void {
    const pid = this.child?.pid;
    if (pid !== undefined) process.kill(-pid, 'SIGSTOP');
  }

  resume(): void {
    const pid = this.child?.pid;
    if (pid !== undefined) process.kill(-pid, 'SIGCONT');
  }

  stop(): Promise<void> {
    this.resume();
    return this.signal('SIGTERM');
  }

  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.launch();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

class SentinelSet implements RedisSentinelSet {
  readonly kind = 'redis-sentinel' as const;
  readonly url: string;
  private stopped = false;

  constructor(
    readonly nodes: readonly Proc[],
    readonly sentinels: readonly Proc[],
    readonly masterName: string,
    private readonly dir: string,
    private readonly dirKey: string,
  ) {
    this.url = `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`;
  }

  /** The master's port as the running Sentinels name it (the first that answers). */
  async masterPort(): Promise<number | undefined> {
    for (const sentinel of this.sentinels.filter((s) => s.running)) {
      try {
        const reply = await cli(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName);
        const port = Number(reply.trim().split('\n')[1]);
        if (port > 0) return port;
      } catch {
        // Ask the next one.
      }
    }
    return undefined;
  }

  async master(): Promise<RedisSentinelNode> {
    const port = await this.masterPort();
    const node = this.nodes.find((candidate) => candidate.port === port && candidate.running);
    if (!node || (await node.role()) !== 'master') {
      throw new Error(`redis sentinel: no running master (the Sentinels name port ${port})`);
    }
    return node;
  }

  async waitForMaster(not?: RedisSentinelNode, timeoutMs = 60_000): Promise<RedisSentinelNode> {
    let found: RedisSentinelNode | undefined;
    await until(`a master other than ${not?.name ?? 'none'}`, timeoutMs, async () => {
      const master = await this.master();
      if (master === not) return false;
      found = master;
      return true;
    });
    return found as RedisSentinelNode;
  }

  waitUntilSynced(timeoutMs = 60_000): Promise<void> {
    return until('every replica in sync', timeoutMs, async () => {
      const master = await this.master();
      const infos = await Promise.all(
        this.nodes.filter((n) => n.running && n !== master).map((n) => cli(n.port, 'INFO', 'replication')),
      );
      return infos.every(
        (info) => info.includes(`master_port:${master.port}`) && info.includes('master_link_status:up'),
      );
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.sentinels, ...this.nodes].map((proc) => proc.kill()));
    await rm(this.dir, { recursive: true, force: true });
    release(this.dirKey);
  }
}

/** Whether this machine can start one: redis-server (which runs Sentinels too) and redis-cli. */
export async function canStartRedisSentinel(): Promise<boolean> {
  try {
    await run('redis-server', ['--version'], { timeout: 5_000 });
    await run('redis-cli', ['--version'], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A Sentinel-managed Redis as local processes on free loopback ports: one master, `replicas`
 * replicas (default 2) and `sentinels` Sentinels (default 3, `redis-server <conf> --sentinel`,
 * quorum a majority). Resolves once the replicas have synced and every Sentinel knows every
 * replica and every other Sentinel, so that a kill of the master is failed over at once. The
 * processes and their data go on stop() or when the test process exits.
 */
export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<RedisSentinelSet> {
  const replicas = options.replicas ?? 2;
  const count = options.sentinels ?? 3;
  const name = options.masterName ?? 'plugmq';
  const downAfterMs = options.downAfterMs ?? 1_000;
  const durable = options.durable ?? true;
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error('replicas must be an integer >= 1');
  if (!Number.isInteger(count) || count < 1) throw new Error('sentinels must be an integer >= 1');
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error('masterName must be of [A-Za-z0-9._-]');
  const timeoutMs = options.startupTimeoutMs ?? 120_000;
  const dir = await mkdtemp(join(tmpdir(), 'plugmq-redis-sentinel-'));
  const dirKey = remember({ dir });
  const ports = await freePorts(1 + replicas + count);
  const dataPorts = ports.slice(0, 1 + replicas);
  const sentinelPorts = ports.slice(1 + replicas);
  let set: SentinelSet | undefined;
  const nodes = dataPorts.map((port, i) => {
    const nodeDir = join(dir, `node-${i + 1}`);
    return new Proc(
      `redis-${port}`,
      port,
      nodeDir,
      async () => {
        // First start: node 1 is the master. Later starts follow whoever the Sentinels name now.
        const master = set ? await set.masterPort() : dataPorts[0];
        return [
          ...['--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir],
          ...['--appendonly', durable ? 'yes' : 'no', '--appendfsync', 'always', '--save', ''],
          ...(master !== undefined && master !== port ? ['--replicaof', '127.0.0.1', String(master)] : []),
        ];
      },
      timeoutMs,
    );
  });
  const sentinels = sentinelPorts.map((port, i) => {
    const sentinelDir = join(dir, `sentinel-${i + 1}`);
    const conf = join(sentinelDir, 'sentinel.conf');
    return new Proc(
      `sentinel-${port}`,
      port,
      sentinelDir,
      async () => {
        // Written once: a Sentinel rewrites its file with what it learnt (the current master,
        // the other Sentinels, its epoch), which a restart must keep.
        if (!set) {
          mkdirSync(sentinelDir, { recursive: true });
          writeFileSync(
            conf,
            [
              `port ${port}`,
              'bind 127.0.0.1',
              `dir ${sentinelDir}`,
              `sentinel monitor ${name} 127.0.0.1 ${dataPorts[0]} ${Math.floor(count / 2) + 1}`,
              `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
              `sentinel failover-timeout ${name} ${Math.max(10_000, downAfterMs * 10)}`,
              `sentinel parallel-syncs ${name} ${replicas}`,
              '',
            ].join('\n'),
          );
        }
        return [conf, '--sentinel'];
      },
      timeoutMs,
    );
  });
  const built = new SentinelSet(nodes, sentinels, name, dir, dirKey);
  try {
    for (const node of nodes) await node.launch();
    await until('every replica in sync', timeoutMs, async () => {
      const infos = await Promise.all(nodes.slice(1).map((n) => cli(n.port, 'INFO', 'replication')));
      return infos.every((info) => info.includes('master_link_status:up'));
    });
    await Promise.all(sentinels.map((sentinel) => sentinel.launch()));
    set = built;
    await until('every Sentinel knowing every replica and Sentinel', timeoutMs, async () => {
      const replies = await Promise.all(sentinels.map((s) => cli(s.port, 'SENTINEL', 'MASTER', name)));
      return replies.every((reply) => {
        const fields = reply.trim().split('\n');
        const field = (key: string) => Number(fields[fields.indexOf(key) + 1]);
        return field('num-slaves') === replicas && field('num-other-sentinels') === count - 1;
      });
    });
  } catch (error) {
    await built.stop();
    throw error;
  }
  return built;
}
