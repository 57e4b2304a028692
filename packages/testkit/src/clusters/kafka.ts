import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kafkaLibs, missingProgram } from '../brokers/local-recipes.js';
import { freePorts } from '../brokers/ports.js';
import { launch, type Running } from '../brokers/process.js';
import { release, remember } from '../brokers/reaper.js';
import { type ClusterMetadata, fetchMetadata, type PartitionMetadata } from './kafka-metadata.js';
import type { ClusterHandle, ClusterNode, StartClusterOptions } from './types.js';

export type { ClusterMetadata, PartitionMetadata, TopicMetadata } from './kafka-metadata.js';

// Kafka 3.9 in KRaft combined mode (every node a broker and a controller voter), three local JVMs
// on free loopback ports (BROKERS.md, "Clusters on loopback"). Replication 3 with
// min.insync.replicas 2: one node may die and every partition keeps accepting acks=-1 writes.

export interface KafkaClusterNode extends ClusterNode {
  /** Kafka's `node.id` (1…n), the id metadata names leaders and replicas by. */
  readonly nodeId: number;
  readonly controllerPort: number;
}

export interface KafkaCluster extends ClusterHandle<KafkaClusterNode> {
  readonly kind: 'kafka';
  /**
   * The node leading `topic`'s `partition`, from a metadata request. While the old leader is
   * dead and not yet replaced, waits (up to `timeoutMs`, default 60 s) for a running leader.
   */
  leaderOf(topic: string, partition: number, timeoutMs?: number): Promise<KafkaClusterNode>;
  /**
   * Resolves once every running node lists every running node as a live broker and every
   * partition (of `topic`, else of every topic, internal ones included) has a leader and all its
   * replicas in sync. Rejects after `timeoutMs` (default 120 s) with what was still missing.
   */
  waitUntilInSync(topic?: string, timeoutMs?: number): Promise<void>;
  /** One metadata answer from a running node (`topics` undefined: every topic). */
  metadata(topics?: readonly string[]): Promise<ClusterMetadata>;
}

export interface StartKafkaClusterOptions extends StartClusterOptions {
  /** Nodes, each a broker and a controller voter (default 3). */
  nodes?: number;
}

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function properties(nodeId: number, dataDir: string, ports: Ports, voters: string): string {
  return [
    'process.roles=broker,controller',
    `node.id=${nodeId}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://${HOST}:${ports.broker},CONTROLLER://${HOST}:${ports.controller}`,
    `advertised.listeners=PLAINTEXT://${HOST}:${ports.broker}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=3',
    'default.replication.factor=3',
    'min.insync.replicas=2',
    'offsets.topic.replication.factor=3',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=3',
    'transaction.state.log.min.isr=2',
    'transaction.state.log.num.partitions=3',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    // A SIGKILLed node is fenced (its partitions get new leaders) after 4 s of missed
    // heartbeats instead of the default 9 s; not lower, a loaded 2-core box must not flap.
    'broker.session.timeout.ms=4000',
    'broker.heartbeat.interval.ms=500',
    // Fewer threads than the defaults (8 I/O, 3 network): three JVMs share two cores.
    'num.io.threads=4',
    'num.network.threads=2',
    'num.replica.fetchers=1',
    '',
  ].join('\n');
}

const LOG4J =
  'log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n' +
  'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n' +
  'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n' +
  'log4j.logger.kafka.request.logger=WARN\nlog4j.logger.org.apache.kafka.raft=WARN\n';

interface Ports {
  broker: number;
  controller: number;
}

class Node implements KafkaClusterNode {
  readonly name: string;
  readonly host = HOST;
  readonly port: number;
  readonly controllerPort: number;
  private process: Running | undefined;

  constructor(
    readonly nodeId: number,
    private readonly dir: string,
    ports: Ports,
    private readonly timeoutMs: number,
  ) {
    this.name = `kafka-${nodeId}`;
    this.port = ports.broker;
    this.controllerPort = ports.controller;
  }

  get running(): boolean {
    return this.process !== undefined && !this.process.done;
  }

  get props(): string {
    return join(this.dir, 'server.properties');
  }

  get logFile(): string {
    return join(this.dir, 'kafka.log');
  }

  /** Starts the JVM without waiting; start() and the cluster's start wait differently. */
  launch(): void {
    if (this.running) return;
    this.process = launch(
      {
        command: 'java',
        args: [
          '-Xms256m',
          '-Xmx512m',
          '-cp',
          `${kafkaLibs()}/*`,
          `-Dlog4j.configuration=file:${join(this.dir, 'log4j.properties')}`,
          'kafka.Kafka',
          this.props,
        ],
      },
      this.logFile,
      this.dir,
    );
  }

  /** Waits until this node answers metadata listing itself: registered and unfenced. */
  async waitUntilServes(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no attempt';
    for (;;) {
      const process = this.process;
      if (!process || process.done) {
        throw new Error(`${this.name} died while starting: ${process?.describeExit() ?? 'not started'}`);
      }
      try {
        const metadata = await fetchMetadata(HOST, this.port);
        if (metadata.brokers.includes(this.nodeId)) return;
        last = `its metadata lists brokers [${metadata.brokers.join(', ')}] only`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not serve within ${timeoutMs} ms (${last}); log ${this.logFile}`);
      }
      await sleep(250);
    }
  }

  async start(): Promise<void> {
    this.launch();
    await this.waitUntilServes(this.timeoutMs);
  }

  async stop(): Promise<void> {
    await this.process?.stop(STOP_GRACE_MS);
  }

  async kill(): Promise<void> {
    const process = this.process;
    if (!process || process.done) return;
    process.signalGroup('SIGKILL');
    await process.exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Removes the process at once (the data goes with the cluster's dir). */
  async destroy(): Promise<void> {
    await this.process?.stop(0);
  }
}

class Cluster implements KafkaCluster {
  readonly kind = 'kafka' as const;
  readonly url: string;
  private stopped = false;

  constructor(
    readonly nodes: readonly Node[],
    private readonly dir: string,
    private readonly dirKey: string,
  ) {
    this.url = `kafka://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  }

  private running(): Node[] {
    const running = this.nodes.filter((n) => n.running);
    if (running.length === 0) throw new Error('no node of the Kafka cluster is running');
    return running;
  }

  async metadata(topics?: readonly string[]): Promise<ClusterMetadata> {
    let last: unknown;
    for (const node of this.running()) {
      try {
        return await fetchMetadata(node.host, node.port, topics);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  async leaderOf(topic: string, partition: number, timeoutMs = 60_000): Promise<Node> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    for (;;) {
      try {
        const metadata = await this.metadata([topic]);
        const found = metadata.topics[0]?.partitions.find((p) => p.partition === partition);
        const leader = this.nodes.find((n) => n.nodeId === found?.leader);
        if (leader?.running) return leader;
        last = found ? `leader ${found.leader}` : `no partition ${partition}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) {
        throw new Error(`${topic}/${partition} has no running leader after ${timeoutMs} ms (${last})`);
      }
      await sleep(200);
    }
  }

  async waitUntilInSync(topic?: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.running();
      const ids = running.map((n) => n.nodeId);
      const answers = await Promise.all(
        running.map((n) =>
          fetchMetadata(n.host, n.port, topic === undefined ? undefined : [topic]).then(
            (metadata) => lagging(n, metadata, ids, topic),
            (err: Error) => `${n.name}: ${err.message}`,
          ),
        ),
      );
      const missing = answers.filter((a): a is string => a !== undefined);
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`the Kafka cluster is not in sync after ${timeoutMs} ms: ${missing.join('; ')}`);
      }
      await sleep(250);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // The data is deleted next, so there is nothing to shut down gracefully for.
    await Promise.all(this.nodes.map((n) => n.destroy()));
    await rm(this.dir, { recursive: true, force: true });
    release(this.dirKey);
  }
}

/** What keeps `node`'s view of the cluster from being in sync, or undefined when nothing does. */
function lagging(node: Node, metadata: ClusterMetadata, running: readonly number[], topic?: string) {
  const absent = running.filter((id) => !metadata.brokers.includes(id));
  if (absent.length > 0) return `${node.name} does not list broker(s) ${absent.join(', ')}`;
  if (topic !== undefined && (metadata.topics.length === 0 || metadata.topics[0]?.errorCode !== 0)) {
    return `${node.name} does not know topic ${topic}`;
  }
  for (const t of metadata.topics) {
    const behind = t.partitions.filter((p) => p.leader < 0 || p.isr.length < p.replicas.length);
    if (behind.length > 0) {
      const first = behind[0] as PartitionMetadata;
      return `${node.name}: ${t.name}/${first.partition} has isr [${first.isr}] of [${first.replicas}] (${behind.length} partition(s) behind)`;
    }
  }
  return undefined;
}

async function logTails(nodes: readonly Node[]): Promise<string> {
  const tails = await Promise.all(
    nodes.map(async (n) => {
      const text = await readFile(n.logFile, 'utf8').catch(() => '');
      return `--- ${n.logFile}\n${text.split('\n').slice(-10).join('\n')}`;
    }),
  );
  return tails.join('\n');
}

/** Whether this machine can start one: Java and the Kafka jars (`pnpm brokers:up kafka`). */
export async function canStartKafkaCluster(): Promise<boolean> {
  return missingProgram('kafka') === undefined;
}

/**
 * Starts a Kafka cluster of `nodes` (default 3) combined broker+controller JVMs on free loopback
 * ports, each with its own data dir under one temp dir, and resolves once every node serves and
 * every partition is in sync. `stop()` (or the test process exiting) removes processes and data.
 */
export async function startKafkaCluster(options: StartKafkaClusterOptions = {}): Promise<KafkaCluster> {
  const count = options.nodes ?? 3;
  const timeoutMs = options.startupTimeoutMs ?? 180_000;
  const missing = missingProgram('kafka');
  if (missing) throw new Error(`cannot start a Kafka cluster: ${missing}`);
  const dir = await mkdtemp(join(tmpdir(), 'plugmq-kafka-cluster-'));
  const dirKey = remember({ dir });
  const ports = await freePorts(2 * count);
  const plan = Array.from({ length: count }, (_, i) => ({
    nodeId: i + 1,
    broker: ports[2 * i] as number,
    controller: ports[2 * i + 1] as number,
  }));
  const voters = plan.map((p) => `${p.nodeId}@${HOST}:${p.controller}`).join(',');
  const nodes = plan.map((p) => new Node(p.nodeId, join(dir, `kafka-${p.nodeId}`), p, timeoutMs));
  const cluster = new Cluster(nodes, dir, dirKey);
  try {
    // Every node's storage formatted with one cluster id (a random UUID in Kafka's base64url form).
    const clusterId = randomBytes(16).toString('base64url');
    await Promise.all(
      plan.map(async (p) => {
        const nodeDir = join(dir, `kafka-${p.nodeId}`);
        await mkdir(nodeDir, { recursive: true });
        await writeFile(
          join(nodeDir, 'server.properties'),
          properties(p.nodeId, join(nodeDir, 'data'), p, voters),
        );
        await writeFile(join(nodeDir, 'log4j.properties'), LOG4J);
        await promisify(execFile)(
          'java',
          [
            '-cp',
            `${kafkaLibs()}/*`,
            'kafka.tools.StorageTool',
            'format',
            // `=`: an id that starts with '-' (1 in 64 of them) would be read as an option.
            `--cluster-id=${clusterId}`,
            '-c',
            join(nodeDir, 'server.properties'),
          ],
          { cwd: nodeDir, timeout: timeoutMs },
        );
      }),
    );
    // All at once: a node cannot finish starting before a quorum of controllers is up.
    for (const node of nodes) node.launch();
    const deadline = Date.now() + timeoutMs;
    await Promise.all(nodes.map((n) => n.waitUntilServes(timeoutMs)));
    await cluster.waitUntilInSync(undefined, Math.max(deadline - Date.now(), 10_000));
  } catch (err) {
    const tails = await logTails(nodes);
    await cluster.stop().catch(() => undefined);
    throw new Error(
      `the Kafka cluster did not form: ${err instanceof Error ? err.message : String(err)}\n${tails}`,
      {
        cause: err,
      },
    );
  }
  return cluster;
}
