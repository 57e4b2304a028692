import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missingProgram } from '../brokers/local-recipes.js';
import { freePorts } from '../brokers/ports.js';
import { waitUntilServes } from '../brokers/probe.js';
import { launch, type Running } from '../brokers/process.js';
import { release, remember } from '../brokers/reaper.js';
import type { ClusterHandle, ClusterNode, StartClusterOptions } from './types.js';

// BROKERS.md "Clusters on loopback": every node its own name, ports, HOME and data dirs, one
// Erlang cookie and one private epmd for the nodes and every rabbitmqctl call, so two test runs
// on one machine (or a developer's own RabbitMQ) never see each other's nodes.

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const RABBITMQCTL = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const STOP_GRACE_MS = 30_000;
const run = promisify(execFile);

export interface RabbitmqClusterNode extends ClusterNode {
  /** The node's own `amqp://guest:guest@127.0.0.1:<port>` URL. */
  readonly url: string;
}

export interface RabbitmqCluster extends ClusterHandle<RabbitmqClusterNode> {
  readonly kind: 'rabbitmq';
  /**
   * The node a queue lives on (vhost `/`): a classic queue's home node, a quorum queue's current
   * leader. Rejects when the queue does not exist or no running node answers.
   */
  nodeHosting(queue: string): Promise<RabbitmqClusterNode>;
  /** Runs `rabbitmqctl -n <node> …args` against a running node; resolves with its stdout. */
  rabbitmqctl(args: readonly string[], node?: RabbitmqClusterNode): Promise<string>;
}

interface Layout {
  readonly name: string;
  readonly port: number;
  readonly distPort: number;
  readonly dir: string;
}

class Node implements RabbitmqClusterNode {
  readonly host = '127.0.0.1';
  readonly name: string;
  readonly port: number;
  readonly url: string;
  process: Running | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly layout: Layout,
  ) {
    this.name = layout.name;
    this.port = layout.port;
    this.url = `amqp://guest:guest@127.0.0.1:${layout.port}`;
  }

  get running(): boolean {
    return this.process !== undefined && !this.process.done;
  }

  env(): NodeJS.ProcessEnv {
    const { dir } = this.layout;
    return {
      ...this.cluster.ctlEnv(dir),
      RABBITMQ_NODENAME: this.name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.layout.distPort),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_LOGS: '-',
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    };
  }

  /** Starts the process and waits until it answers AMQP (not yet until it has rejoined). */
  async boot(timeoutMs: number): Promise<void> {
    if (this.running) return;
    const { dir } = this.layout;
    const running = launch(
      { command: RABBITMQ_SERVER, args: [], env: this.env() },
      join(dir, 'node.log'),
      dir,
    );
    this.process = running;
    await waitUntilServes('rabbitmq', this.url, timeoutMs, async () =>
      running.done ? `${this.name} ${running.describeExit()}` : undefined,
    );
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.boot(this.cluster.timeoutMs);
    await this.cluster.awaitRunning(this.name, this.cluster.timeoutMs);
  }

  async stop(): Promise<void> {
    await this.process?.stop(STOP_GRACE_MS);
  }

  async kill(): Promise<void> {
    const running = this.process;
    if (!running || running.done) return;
    running.signalGroup('SIGKILL');
    await running.exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

class Cluster implements RabbitmqCluster {
  readonly kind = 'rabbitmq' as const;
  readonly url: string;
  readonly nodes: Node[];
  private epmd: Running | undefined;
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly dirKey: string,
    private readonly epmdPort: number,
    layouts: readonly Layout[],
    readonly timeoutMs: number,
  ) {
    this.nodes = layouts.map((layout) => new Node(this, layout));
    this.url = `amqp://guest:guest@${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  ctlEnv(home: string): NodeJS.ProcessEnv {
    return {
      ...process.env,
      HOME: home,
      ERL_EPMD_PORT: String(this.epmdPort),
      RABBITMQ_CONF_ENV_FILE: join(this.dir, 'rabbitmq-env.conf'),
    };
  }

  async form(): Promise<void> {
    this.epmd = launch(
      { command: 'epmd', args: ['-port', String(this.epmdPort), '-address', '127.0.0.1'] },
      join(this.dir, 'epmd.log'),
      this.dir,
    );
    await Promise.all(this.nodes.map((node) => node.boot(this.timeoutMs)));
    const [first, ...others] = this.nodes;
    if (!first) throw new Error('a RabbitMQ cluster needs at least one node');
    for (const node of others) {
      await this.rabbitmqctl(['stop_app'], node);
      await this.rabbitmqctl(['join_cluster', first.name], node);
      await this.rabbitmqctl(['start_app'], node);
    }
    for (const node of this.nodes) await this.awaitRunning(node.name, this.timeoutMs);
  }

  async rabbitmqctl(args: readonly string[], node?: RabbitmqClusterNode): Promise<string> {
    const target = node ?? this.nodes.find((n) => n.running);
    if (!target) throw new Error('no RabbitMQ node of the cluster is running');
    const { stdout } = await run(RABBITMQCTL, ['-n', target.name, ...args], {
      env: this.ctlEnv(join(this.dir, 'ctl')),
      timeout: 60_000,
    });
    return stdout;
  }

  /** Until `cluster_status` on a running node lists `name` among the running nodes. */
  async awaitRunning(name: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const status = JSON.parse(await this.rabbitmqctl(['cluster_status', '--formatter', 'json']));
        const running: unknown = status.running_nodes;
        if (Array.isArray(running) && running.includes(name)) return;
        last = `running: ${JSON.stringify(running)}`;
      } catch (error) {
        last = String(error).split('\n')[0] ?? '';
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    throw new Error(`RabbitMQ node ${name} did not join the cluster within ${timeoutMs} ms (${last})`);
  }

  async nodeHosting(queue: string): Promise<RabbitmqClusterNode> {
    // Table output: JSON writes pids as `#PID<…>` without the node name.
    const out = await this.rabbitmqctl(['list_queues', '--silent', 'name', 'type', 'pid', 'leader']);
    const row = out
      .split('\n')
      .map((line) => line.split('\t'))
      .find((fields) => fields[0] === queue);
    if (!row) throw new Error(`no queue ${queue} in the cluster`);
    const [, type, pid = '', leader] = row;
    const owner = type === 'quorum' ? leader : /^<([^.]+@[^.]+)\./.exec(pid)?.[1];
    const node = this.nodes.find((n) => n.name === owner);
    if (!node) throw new Error(`queue ${queue} is on no known node (${row.join(' ')})`);
    return node;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // The data is deleted next: no graceful shutdown needed.
    await Promise.all([...this.nodes.map((n) => n.process), this.epmd].map((r) => r?.stop(0)));
    // A node's helper processes (the Erlang port programs) may still write their files for a
    // moment after it is killed: a single rm failed a CI run with ENOTEMPTY.
    await rm(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    release(this.dirKey);
  }
}

/**
 * A RabbitMQ cluster of `nodes` (default 3) local `rabbitmq-server` processes on free loopback
 * ports, named `rabbit1@localhost` …, formed by joining every node to the first. Its data lives in
 * a temp dir removed by stop() (or when the test process dies); a node killed or stopped keeps its
 * data and rejoins on start().
 */
export async function startRabbitmqCluster(
  options: StartClusterOptions & { nodes?: number } = {},
): Promise<RabbitmqCluster> {
  const missing = missingProgram('rabbitmq');
  if (missing) throw new Error(missing);
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`nodes must be a positive integer, got ${count}`);
  const dir = await mkdtemp(join(tmpdir(), 'plugmq-rabbitmq-cluster-'));
  const dirKey = remember({ dir });
  const [epmdPort = 0, ...ports] = await freePorts(1 + 2 * count);
  const cookie = `PLUGMQ${Math.random().toString(36).slice(2).toUpperCase()}`;
  await writeFile(join(dir, 'rabbitmq-env.conf'), '');
  const layouts: Layout[] = [];
  for (let i = 0; i < count; i++) {
    const home = join(dir, `rabbit${i + 1}`);
    layouts.push({
      name: `rabbit${i + 1}@localhost`,
      port: ports[2 * i] ?? 0,
      distPort: ports[2 * i + 1] ?? 0,
      dir: home,
    });
  }
  for (const home of [...layouts.map((l) => l.dir), join(dir, 'ctl')]) {
    await mkdir(home, { recursive: true });
    await writeFile(join(home, '.erlang.cookie'), cookie);
    await chmod(join(home, '.erlang.cookie'), 0o400);
    await writeFile(join(home, 'enabled_plugins'), '[].\n');
    await writeFile(join(home, 'rabbitmq.conf'), 'loopback_users = none\n');
  }
  const cluster = new Cluster(dir, dirKey, epmdPort, layouts, options.startupTimeoutMs ?? 180_000);
  try {
    await cluster.form();
  } catch (error) {
    await cluster.stop().catch(() => undefined);
    throw error;
  }
  return cluster;
}
