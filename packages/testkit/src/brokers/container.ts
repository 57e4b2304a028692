import {
  GenericContainer,
  getContainerRuntimeClient,
  ImageName,
  type StartedTestContainer,
  Wait,
} from 'testcontainers';
import { applyContainerDefaults, imageVariable } from './env.js';
import { kafkaListeners } from './kafka-listeners.js';
import { freePort } from './ports.js';
import { waitUntilServes } from './probe.js';
import { release, remember } from './reaper.js';
import { track, untrack } from './registry.js';
import type {
  BrokerHandle,
  BrokerKind,
  BrokerProvider,
  ProxiedListener,
  StartBrokerOptions,
} from './types.js';
import { OFFICIAL_IMAGES } from './versions.js';

// Brokers in containers through testcontainers: the official images on Docker, the images
// `pnpm brokers:images` builds on podman. Host ports are chosen here (free ones) and bound
// explicitly, so the URL survives restart() and kill(): an engine would pick new random ports.

const ENGINE_CHECK_MS = 10_000;

function imageFor(kind: BrokerKind, options: StartBrokerOptions): string {
  return options.image ?? process.env[imageVariable(kind)] ?? OFFICIAL_IMAGES[kind];
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Podman's Docker API lists every port the image EXPOSEs in HostConfig.PortBindings (null when not
 * published); testcontainers then waits for all of them to be bound and fails after 10 s. So every
 * exposed port of an image already present is published to a free host port; on Docker this only
 * maps a few spare ports (RabbitMQ's management and clustering ports).
 */
async function exposedPorts(image: string): Promise<number[]> {
  try {
    const client = await getContainerRuntimeClient();
    const info = await client.image.inspect(ImageName.fromString(image));
    return Object.keys(info.Config?.ExposedPorts ?? {})
      .filter((p) => p.endsWith('/tcp'))
      .map((p) => Number.parseInt(p, 10));
  } catch {
    return []; // not pulled yet: testcontainers pulls it, and Docker has no such quirk
  }
}

async function publish(container: GenericContainer, image: string, main: number): Promise<number> {
  const port = await freePort();
  container.withExposedPorts({ container: main, host: port });
  for (const extra of await exposedPorts(image)) {
    if (extra !== main) container.withExposedPorts({ container: extra, host: await freePort() });
  }
  return port;
}

let sequence = 0;

/** Configures the container for one kind; returns it with the URL clients will use. */
async function configure(
  kind: BrokerKind,
  image: string,
  name: string,
  options: StartBrokerOptions,
): Promise<{ container: GenericContainer; url: (host: string) => string; proxied?: ProxiedListener }> {
  // PLUGMQ_RUN_ID (exported by .ci/run) lets CI find exactly this run's containers afterwards.
  const labels: Record<string, string> = { 'dev.plugmq.broker': kind };
  if (process.env.PLUGMQ_RUN_ID) labels['dev.plugmq.run'] = process.env.PLUGMQ_RUN_ID;
  const base = new GenericContainer(image).withName(name).withLabels(labels);
  if (kind === 'redis') {
    const port = await publish(base, image, 6379);
    // appendfsync always: what a write returns OK for survives kill -9, which the fault tests rely on.
    const container = base
      .withCommand([
        'redis-server',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        '/data',
        '--protected-mode',
        'no',
      ])
      .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/));
    return { container, url: (host) => `redis://${host}:${port}` };
  }
  if (kind === 'rabbitmq') {
    const port = await publish(base, image, 5672);
    const container = base.withWaitStrategy(Wait.forLogMessage(/Server startup complete/));
    return { container, url: (host) => `amqp://guest:guest@${host}:${port}` };
  }
  // Kafka hands clients its advertised address, which must be the one they dial: with host
  // networking the broker listens on free loopback ports and advertises exactly those. The
  // environment is the container's, so a restart keeps every listener on the same ports.
  const plan = await kafkaListeners(options.proxiedListener === true);
  const container = base
    .withNetworkMode('host')
    .withEnvironment({
      CLUSTER_ID: '5L6g3nShT-eMCtK--X86sw',
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: plan.listeners,
      KAFKA_ADVERTISED_LISTENERS: plan.advertised,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: plan.protocolMap,
      KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: `1@127.0.0.1:${plan.controllerPort}`,
      KAFKA_LOG_DIRS: '/tmp/kraft-combined-logs',
      KAFKA_NUM_PARTITIONS: '3',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '3',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
      // Flush every message: what the broker acknowledged survives kill -9.
      KAFKA_LOG_FLUSH_INTERVAL_MESSAGES: '1',
      KAFKA_HEAP_OPTS: '-Xms256m -Xmx512m',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/));
  return { container, url: () => `kafka://127.0.0.1:${plan.port}`, proxied: plan.proxied };
}

class ContainerBroker implements BrokerHandle {
  readonly source = 'container' as const;
  private stopped = false;

  constructor(
    readonly kind: BrokerKind,
    readonly url: string,
    private readonly started: StartedTestContainer,
    private readonly ledgerKey: string,
    private readonly timeoutMs: number,
    readonly proxied: ProxiedListener | undefined,
  ) {}

  private async api() {
    const client = await getContainerRuntimeClient();
    return client.container.getById(this.started.getId());
  }

  private async running(): Promise<boolean> {
    const info = await (await this.api()).inspect();
    return info.State.Running === true;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    untrack(this);
    // No graceful shutdown needed for a broker about to be deleted; remove its volumes too.
    await this.started.stop({ remove: true, removeVolumes: true, timeout: 0 });
    release(this.ledgerKey);
  }

  async restart(): Promise<void> {
    const container = await this.api();
    // A graceful stop (SIGTERM, up to 30 s) lets each broker close its files cleanly.
    if (await this.running()) await container.stop({ t: 30 });
    // Under load podman can answer the stop while the container is still "stopping"; a start
    // then fails with "container state improper". Wait until it can be started.
    const deadline = Date.now() + 40_000;
    for (;;) {
      try {
        await container.start();
        break;
      } catch (error) {
        if (!/state improper/.test(String(error)) || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await waitUntilServes(this.kind, this.url, this.timeoutMs, async () =>
      (await this.running()) ? undefined : 'container exited',
    );
  }

  async kill(): Promise<void> {
    if (!(await this.running())) return;
    await (await this.api()).kill({ signal: 'SIGKILL' });
    const deadline = Date.now() + 10_000;
    while ((await this.running()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }
}

export const containerProvider: BrokerProvider = {
  source: 'container',

  async unavailableReason(kind) {
    applyContainerDefaults();
    let client: Awaited<ReturnType<typeof getContainerRuntimeClient>>;
    try {
      client = await withTimeout(getContainerRuntimeClient(), ENGINE_CHECK_MS, 'finding a container engine');
    } catch (err) {
      return `no container engine reachable (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'}): ${
        err instanceof Error ? err.message : String(err)
      }`;
    }
    const image = imageFor(kind, {});
    // Locally built images cannot be pulled: say how to build them instead of failing on a pull.
    if (/^(localhost\/)?plugmq\//.test(image) && !(await client.image.exists(ImageName.fromString(image)))) {
      return `image ${image} is not built (run: pnpm brokers:images)`;
    }
    return undefined;
  },

  async start(kind, options) {
    applyContainerDefaults();
    const timeoutMs = options.startupTimeoutMs ?? 120_000;
    // Named and in the ledger before it starts: a start that fails half-way must not leave it behind.
    sequence += 1;
    const name = `plugmq-${kind}-${process.pid}-${sequence}-${Math.random().toString(36).slice(2, 8)}`;
    const ledgerKey = remember({ container: name });
    const { container, url, proxied } = await configure(kind, imageFor(kind, options), name, options);
    let started: StartedTestContainer;
    try {
      started = await container.withStartupTimeout(timeoutMs).start();
    } catch (err) {
      const client = await getContainerRuntimeClient();
      await client.container
        .getById(name)
        .remove({ force: true, v: true })
        .catch(() => undefined);
      release(ledgerKey);
      throw err;
    }
    const broker = new ContainerBroker(kind, url(started.getHost()), started, ledgerKey, timeoutMs, proxied);
    track(broker);
    try {
      // The log line says the broker started; the probe says it serves clients.
      await waitUntilServes(kind, broker.url, timeoutMs);
    } catch (err) {
      await broker.stop().catch(() => undefined);
      throw err;
    }
    return broker;
  },
};
