/** The brokers PlugMQ's drivers are tested against. */
export type BrokerKind = 'redis' | 'rabbitmq' | 'kafka';

export const BROKER_KINDS: readonly BrokerKind[] = ['redis', 'rabbitmq', 'kafka'];

/** Where a broker came from, in BROKERS.md's order of preference. */
export type BrokerSource = 'env' | 'container' | 'process';

/**
 * A broker listener meant to be reached only through a TCP proxy the test runs: the broker listens
 * on `targetHost:targetPort` and tells clients (in Kafka's metadata) to dial 127.0.0.1:`listenPort`,
 * so a proxy listening there, forwarding to the target, carries every connection they make.
 */
export interface ProxiedListener {
  /** Reserved for the proxy when the broker started; nothing listens on it until the proxy does. */
  readonly listenPort: number;
  readonly targetHost: string;
  readonly targetPort: number;
}

export interface BrokerHandle {
  readonly kind: BrokerKind;
  /**
   * How clients reach it: `redis://host:port`, `amqp://user:pass@host:port`, `kafka://host:port`
   * (see `kafkaBrokers()` for kafkajs' `brokers` list). Stable across restart() and kill().
   */
  readonly url: string;
  readonly source: BrokerSource;
  /**
   * The listener for a TCP proxy, when `proxiedListener` was asked for and the broker needs one
   * (Kafka, started by the testkit). Same ports across restart() and kill().
   */
  readonly proxied?: ProxiedListener;
  /**
   * RabbitMQ started with `management: true` as a local process: `http://127.0.0.1:<port>` of its
   * management HTTP API (user guest/guest, statistics every 500 ms). Absent otherwise.
   */
  readonly managementUrl?: string;
  /** Stops the broker and removes its container or process and data. Idempotent. */
  stop(): Promise<void>;
  /**
   * Gracefully stops (if running) and starts the broker again on the same address, keeping its data:
   * Redis' AOF, RabbitMQ's durable queues and persistent messages, Kafka's log. Also brings a broker
   * back after kill(). Resolves once the broker serves again.
   */
  restart(): Promise<void>;
  /** SIGKILLs the broker (no clean shutdown) and leaves it down; restart() brings it back. */
  kill(): Promise<void>;
}

export interface StartBrokerOptions {
  /**
   * Only try this source, or these (still in BROKERS.md's order env → container → process). Fault
   * tests pass `['container', 'process']`: they need a broker they own, never the user's.
   */
  source?: BrokerSource | readonly BrokerSource[];
  /** Image for the container source; default `PLUGMQ_<KIND>_IMAGE`, then the official image. */
  image?: string;
  /** How long to wait for the broker to serve, in ms (default 120 s: first starts on 2 cores). */
  startupTimeoutMs?: number;
  /**
   * Kafka: also open a listener for a TCP proxy (`handle.proxied`). Kafka clients connect to the
   * addresses in the broker's metadata, not to the one they bootstrapped from, so a proxy in front
   * of the normal listener would see only the first request; this listener is advertised at the
   * proxy's port instead. Other kinds ignore it (their clients dial only the URL, any proxy port
   * works), as does a broker from `PLUGMQ_<KIND>_URL` (not the testkit's to configure).
   */
  proxiedListener?: boolean;
  /**
   * RabbitMQ as a local process: also enable the management plugin (`handle.managementUrl`).
   * It costs a few seconds of startup, so only tests of the management API ask for it; other
   * sources and kinds ignore it.
   */
  management?: boolean;
}

/** Internal contract every source implements. */
export interface BrokerProvider {
  readonly source: BrokerSource;
  /** Why this source cannot give a broker of this kind right now, or undefined if it can. */
  unavailableReason(kind: BrokerKind): Promise<string | undefined>;
  start(kind: BrokerKind, options: StartBrokerOptions): Promise<BrokerHandle>;
}
