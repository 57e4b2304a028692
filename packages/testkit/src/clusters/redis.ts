import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
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

export interface RedisClusterOptions extends StartClusterOptions {
  /** Masters, each owning an equal share of the 16 384 slots (default 3, at least 3). */
  masters?: number;
  /** Replicas per master (default 1): a killed master's replica takes over its slots. */
  replicasPerMaster?: number;
  /**
   * `cluster-node-timeout` in ms (default 3 000): a master unreachable this long is marked failed
   * and its replica promoted, about one to two timeouts after the kill.
   */
  nodeTimeoutMs?: number;
  /**
   * true (default): AOF fsynced on every write, so a killed node keeps every write it answered.
   * false: no persistence at all (faster, for suites that never kill a node).
   */
  durable?: boolean;
}

export interface RedisClusterNode extends ClusterNode {
  /** The cluster bus port (`cluster-port`), chosen free rather than the client port + 10 000. */
  readonly busPort: number;
  /** The node's id in CLUSTER NODES (kept in its nodes.conf across restarts). */
  nodeId(): Promise<string>;
  /** `master` or `replica`, as the node itself reports it (INFO replication). */
  role(): Promise<'master' | 'replica'>;
}

export interface RedisCluster extends ClusterHandle<RedisClusterNode> {
  readonly kind: 'redis';
  /** The running master that owns `key`'s slot (CLUSTER KEYSLOT, then CLUSTER NODES). */
  masterOf(key: string): Promise<RedisClusterNode>;
  /** Resolves once every running node reports `cluster_state:ok` (default limit 60 s). */
  waitUntilOk(timeoutMs?: number): Promise<void>;
}

/** One redis-cli call against a node; rejects when the node does not answer within 5 s. */
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
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

class Node implements RedisClusterNode {
  readonly host = '127.0.0.1';
  readonly name: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private ledgerKey: string | undefined;
  private id: string | undefined;

  constructor(
    readonly port: number,
    readonly busPort: number,
    private readonly dir: string,
    private readonly nodeTimeoutMs: number,
    private readonly startupTimeoutMs: number,
    private readonly durable: boolean,
  ) {
    this.name = `redis-${port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the process and waits for PING (the cluster it rejoins is checked by start()). */
  launch(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const log = openSync(join(this.dir, 'redis.log'), 'a');
    const args = [
      ...['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir],
      ...['--cluster-enabled', 'yes', '--cluster-port', String(this.busPort)],
      ...['--cluster-config-file', join(this.dir, 'nodes.conf')],
      ...['--cluster-node-timeout', String(this.nodeTimeoutMs)],
      // A replica may always take over, however long it was cut off (tests kill masters at will).
      ...['--cluster-replica-validity-factor', '0'],
      ...['--appendonly', this.durable ? 'yes' : 'no', '--appendfsync', 'always', '--save', ''],
    ];
    const child = spawn('redis-server', args, { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start redis-server on port ${this.port}`);
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
    return until(`${this.name} answering PING`, this.startupTimeoutMs, async () => {
      if (this.child !== child)
        throw new Error(`${this.name} exited while starting; see ${this.dir}/redis.log`);
      return (await cli(this.port, 'PING')).includes('PONG');
    });
  }

  async nodeId(): Promise<string> {
    this.id ??= (await cli(this.port, 'CLUSTER', 'MYID')).trim();
    return this.id;
  }

  async role(): Promise<'master' | 'replica'> {
    const info = await cli(this.port, 'INFO', 'replication');
    return /role:master/.test(info) ? 'master' : 'replica';
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    signalGroup(pid, signal);
    await this.exited;
  }

  stop(): Promise<void> {
    // SIGTERM: Redis fsyncs its AOF and exits; nodes.conf keeps its identity for start().
    return this.signal('SIGTERM');
  }

  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.launch();
    // Rejoined: it sees the cluster whole again; a returning master was demoted to replica of its
    // successor and must have caught up before it can take over in turn.
    await until(`${this.name} rejoining`, this.startupTimeoutMs, async () => {
      if (!(await cli(this.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      const info = await cli(this.port, 'INFO', 'replication');
      return info.includes('role:master') || info.includes('master_link_status:up');
    });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

interface NodesLine {
  readonly port: number;
  readonly master: boolean;
  readonly failed: boolean;
  /** Slot ranges (`0-5460`, `7000`) a master serves. */
  readonly slots: readonly [number, number][];
}

/** CLUSTER NODES: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`. */
function parseNodes(text: string): NodesLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => {
      const [, address = '', flags = '', , , , , , ...slots] = line.trim().split(' ');
      const flagList = flags.split(',');
      return {
        port: Number(address.split('@')[0]?.split(':')[1]),
        master: flagList.includes('master'),
        failed: flagList.includes('fail') || flagList.includes('fail?'),
        slots: slots
          .filter((slot) => !slot.startsWith('['))
          .map((slot) => {
            const [from, to = from] = slot.split('-');
            return [Number(from), Number(to)] as [number, number];
          }),
      };
    });
}

class Cluster implements RedisCluster {
  readonly kind = 'redis' as const;
  readonly url: string;
  private stopped = false;

  constructor(
    readonly nodes: readonly Node[],
    private readonly dir: string,
    private readonly dirKey: string,
  ) {
    this.url = `redis://${nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`;
  }

  async masterOf(key: string): Promise<RedisClusterNode> {
    const live = this.nodes.filter((node) => node.running);
    let lastError: unknown;
    for (const asked of live) {
      try {
        const slot = Number((await cli(asked.port, 'CLUSTER', 'KEYSLOT', key)).trim());
        const owner = parseNodes(await cli(asked.port, 'CLUSTER', 'NODES')).find(
          (line) =>
            line.master && !line.failed && line.slots.some(([from, to]) => slot >= from && slot <= to),
        );
        const node = live.find((candidate) => candidate.port === owner?.port);
        if (node) return node;
        lastError = new Error(`no running master serves slot ${slot} (as ${asked.name} sees it)`);
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`redis cluster: cannot tell which master owns ${key}: ${String(lastError)}`);
  }

  waitUntilOk(timeoutMs = 60_000): Promise<void> {
    return until('every running node reporting cluster_state:ok', timeoutMs, async () => {
      const live = this.nodes.filter((node) => node.running);
      const infos = await Promise.all(live.map((node) => cli(node.port, 'CLUSTER', 'INFO')));
      return infos.every((info) => info.includes('cluster_state:ok'));
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // The data goes next: nothing to shut down gracefully for.
    await Promise.all(this.nodes.map((node) => node.kill()));
    await rm(this.dir, { recursive: true, force: true });
    release(this.dirKey);
  }
}

/** Whether this machine can start one: redis-server and redis-cli on PATH. */
export async function canStartRedisCluster(): Promise<boolean> {
  try {
    await run('redis-server', ['--version'], { timeout: 5_000 });
    await run('redis-cli', ['--version'], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A Redis Cluster of local `redis-server` processes on free loopback ports (default 3 masters,
 * 1 replica each, AOF fsynced on every write), formed with `redis-cli --cluster create`. Resolves
 * once every node reports `cluster_state:ok` and every replica has synced. The processes and
 * their data go on stop() or when the test process exits.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  if (!Number.isInteger(masters) || masters < 3) throw new Error('masters must be an integer >= 3');
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new Error('replicasPerMaster must be an integer >= 0');
  const timeoutMs = options.startupTimeoutMs ?? 180_000;
  const count = masters * (1 + replicas);
  const dir = await mkdtemp(join(tmpdir(), 'plugmq-redis-cluster-'));
  const dirKey = remember({ dir });
  const ports = await freePorts(count * 2);
  const nodes = Array.from(
    { length: count },
    (_, i) =>
      new Node(
        ports[2 * i] as number,
        ports[2 * i + 1] as number,
        join(dir, `node-${i + 1}`),
        options.nodeTimeoutMs ?? 3_000,
        timeoutMs,
        options.durable ?? true,
      ),
  );
  const cluster = new Cluster(nodes, dir, dirKey);
  try {
    await Promise.all(nodes.map((node) => node.launch()));
    // redis-cli makes the first `masters` nodes masters and the rest their replicas.
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: timeoutMs },
    );
    await cluster.waitUntilOk(timeoutMs);
    await until('every replica in sync', timeoutMs, async () => {
      const infos = await Promise.all(nodes.map((node) => cli(node.port, 'INFO', 'replication')));
      return infos.every((info) => info.includes('role:master') || info.includes('master_link_status:up'));
    });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
