/**
 * Replicated brokers on loopback, for tests whose fault is a node dying: a Kafka partition
 * leader, a RabbitMQ node homing queues, a Redis master. Each kind's file starts its cluster as
 * local processes on free loopback ports (BROKERS.md's "Clusters on loopback") and removes them,
 * with their data, when stopped or when the test process exits.
 */
export type ClusterKind = 'kafka' | 'rabbitmq' | 'redis' | 'redis-sentinel';

export interface ClusterNode {
  /** Stable name within the cluster: `kafka-1`, `rabbit2@localhost`, `redis-7002`. */
  readonly name: string;
  readonly host: string;
  /** The client port (Kafka PLAINTEXT, AMQP, Redis). Stable across restart and kill. */
  readonly port: number;
  /** True while the node's process runs (false after stop() or kill(), until start()). */
  readonly running: boolean;
  /** Graceful shutdown; the node keeps its data and can be started again. */
  stop(): Promise<void>;
  /** SIGKILLs the node's process (no clean shutdown); it keeps what it had written. */
  kill(): Promise<void>;
  /** Starts a stopped or killed node with its data; resolves once it serves and has rejoined. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
}

export interface ClusterHandle<Node extends ClusterNode = ClusterNode> {
  readonly kind: ClusterKind;
  /** Every node in one client URL (`kafka://h:p1,h:p2,h:p3`, `amqp://u:p@h:p1,h:p2,…`, `redis://h:p1,h:p2,…`). */
  readonly url: string;
  readonly nodes: readonly Node[];
  /** Stops every node and removes its data. Idempotent. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** How long to wait for the cluster to form, in ms (default 180 s: three JVMs on 2 cores). */
  startupTimeoutMs?: number;
}
