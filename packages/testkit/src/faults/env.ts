import {
  createQueueManager,
  type DriverDefinition,
  type PlugmqConfig,
  type QueueManager,
  registerDriver,
} from '@plugmq/core';
import { startBroker } from '../brokers/start.js';
import type { BrokerHandle, BrokerKind } from '../brokers/types.js';
import { FigureBook } from './figures.js';

/** What the broker scenarios need of the server they fault. */
export type FaultServer = Pick<BrokerHandle, 'url' | 'stop' | 'restart' | 'kill' | 'proxied'> & {
  readonly kind: string;
  readonly source: string;
};

/** Reads the dead letter of an injected message with the broker's own client. */
export interface DeadLetterProbe {
  /** The dead letter's `x-plugmq-error` header, or undefined if it has not arrived. */
  error(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** The eight scenarios of the fault suite (issue 10), in its order. */
export type FaultScenario =
  | 'restart'
  | 'kill'
  | 'consumerKill'
  | 'outage'
  | 'malformed'
  | 'flood'
  | 'close'
  | 'network';

export interface FaultSuiteOptions {
  /** Shown in test names and the figures table. */
  readonly name: string;
  readonly driver: DriverDefinition;
  /** The broker the driver needs; absent for in-process drivers (memory). */
  readonly kind?: BrokerKind;
  /**
   * For a server that is not a BrokerKind (PostgreSQL): starts one the suite owns, restarts and
   * kills. Used instead of `kind`.
   */
  startServer?(): Promise<FaultServer>;
  /** The driver's configuration for a broker at `url` (JSON-serialisable: the child process gets it). */
  config(url: string | undefined): PlugmqConfig;
  /** Absolute path of the driver's module (exports `driver`), for the child-process consumer. */
  readonly driverModule?: string;
  /** `@plugmq/core`'s entry for the child bundle (the workspace's sources in this repo). */
  readonly coreEntry?: string;
  /**
   * Scenario 5: writes undecodable bytes to `type` with the broker's own client, and returns a
   * probe that reads `<type>.dlq` with that client and gives the dead letter's `x-plugmq-error`
   * (or undefined while there is none). Read raw, because the dead letter keeps the undecodable
   * bytes, so a PlugMQ consumer of the dead-letter type cannot decode it either. The suite
   * consumes `<type>.dlq` with PlugMQ before injecting, so brokers that route only to existing
   * queues have one.
   */
  injectMalformed?(url: string, type: string): Promise<DeadLetterProbe>;
  /**
   * When a scenario lost messages: looks for the lost ids on the broker with its own client and
   * says what it found (e.g. "12 of 66 are in the log"), so the report can tell a consumer that
   * skipped them from a publish that resolved without storing.
   */
  inspectLost?(url: string, type: string, ids: readonly string[]): Promise<string>;
  /**
   * Scenarios that do not apply, with the reason (it goes into the skipped test's name). Broker
   * scenarios are skipped automatically when `kind` is absent.
   */
  readonly skip?: Partial<Record<FaultScenario, string>>;
  /**
   * Only these scenarios run; the others are skipped with `only.reason`. For a second run of the
   * suite with options that change what some scenarios fault (e.g. a driver's partitions).
   */
  readonly only?: { readonly scenarios: readonly FaultScenario[]; readonly reason: string };
  /** Messages in each restart/kill stream (default FAULT_STREAM or 10 000). */
  readonly streamSize?: number;
  /** Messages in the flood (default FAULT_FLOOD, else 1 000 000 without a broker, 200 000 with one). */
  readonly floodSize?: number;
  /** Whether the flood's publish blocks on a full buffer (memory) rather than being stored by a broker. */
  readonly floodBackpressure?: boolean;
  /** Bound on the flood's RSS growth over the start, in MiB (default 200). */
  readonly floodRssBudgetMiB?: number;
}

function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Shared state of one driver's fault suite: its owned broker, its managers, its figures. */
export class FaultEnv {
  readonly figures = new FigureBook();
  readonly streamSize: number;
  readonly floodSize: number;
  private handle: FaultServer | undefined;
  private readonly managers = new Set<QueueManager>();

  constructor(readonly options: FaultSuiteOptions) {
    registerDriver(options.driver);
    this.streamSize = options.streamSize ?? envNumber('FAULT_STREAM', 10_000);
    this.floodSize =
      options.floodSize ??
      envNumber('FAULT_FLOOD', options.kind || options.startServer ? 200_000 : 1_000_000);
  }

  /**
   * A broker this run owns (restarted and killed by the suite): never the user's from the env.
   * With a listener for scenario 8's proxy where the kind needs one (Kafka).
   */
  async setup(): Promise<void> {
    if (this.options.startServer) this.handle = await this.options.startServer();
    else if (this.options.kind) {
      this.handle = await startBroker(this.options.kind, {
        source: ['container', 'process'],
        proxiedListener: true,
      });
    }
  }

  /** Whether a broker runs beside the driver (false for in-process drivers). */
  get hasBroker(): boolean {
    return Boolean(this.options.kind || this.options.startServer);
  }

  get broker(): FaultServer {
    if (!this.handle) throw new Error(`${this.options.name}: no broker (see the beforeAll error)`);
    return this.handle;
  }

  get url(): string | undefined {
    return this.handle?.url;
  }

  config(url = this.url): PlugmqConfig {
    return this.options.config(url);
  }

  /** A manager closed by cleanup() if the scenario does not close it (idempotent close). */
  async manager(overrides: Record<string, unknown> = {}, url = this.url): Promise<QueueManager> {
    const manager = await createQueueManager({ ...this.config(url), ...overrides });
    this.managers.add(manager);
    return manager;
  }

  /** Waits until every given manager reports healthy (bounded). */
  async healthy(managers: readonly QueueManager[], timeoutMs: number): Promise<number> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        managers.map((manager) => manager.health().catch(() => ({ ok: false }))),
      );
      if (states.every((state) => state.ok)) return Date.now() - started;
      if (Date.now() > deadline) throw new Error(`managers not healthy within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async cleanup(): Promise<void> {
    const open = [...this.managers];
    this.managers.clear();
    await Promise.allSettled(open.map((manager) => manager.close()));
  }

  async teardown(): Promise<void> {
    await this.cleanup();
    this.figures.print(`plugmq fault figures: ${this.options.name}`);
    await this.handle?.stop();
  }

  /** Why `scenario` does not apply to this driver, or undefined if it runs. */
  skipReason(scenario: FaultScenario, needsBroker: boolean): string | undefined {
    const given = this.options.skip?.[scenario];
    if (given) return given;
    const { only } = this.options;
    if (only && !only.scenarios.includes(scenario)) return only.reason;
    if (needsBroker && !this.hasBroker) return `no broker to fault: ${this.options.name} runs in-process`;
    return undefined;
  }
}
