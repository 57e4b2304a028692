import type { Capabilities, PlugmqConfig, QueueManager } from '@plugmq/core';
import type { TestContext } from 'vitest';
import { uniqueGroup, uniqueType, withTimeout } from './helpers.js';
import { LogRecorder } from './log-recorder.js';

export interface ConformanceOptions {
  /** Shown in the describe() title, e.g. 'memory'. */
  name: string;
  /** A fresh manager on the same broker each call. Overrides carry core config such as publishTimeoutMs, closeTimeoutMs. */
  create(overrides?: Partial<PlugmqConfig>): Promise<QueueManager>;
  /** Multiply waits for slow brokers (default 1). */
  timeScale?: number;
  /**
   * Overrides that give the driver a buffer of only a few messages per group, for the
   * back-pressure scenarios (skipped without it). Memory: `{ bufferSize: 4, namespace: 'bp' }`.
   */
  smallBuffer?: Partial<PlugmqConfig>;
  /**
   * Overrides pointing the driver at an address where no broker answers, with credentials in the
   * URL, e.g. `{ url: 'amqp://user:s3cret@127.0.0.1:1' }`: create() must fail with CONNECTION and
   * never show the password. Skipped without it.
   */
  unreachable?: Partial<PlugmqConfig>;
  /**
   * The driver's largest message as an option, e.g. `{ maxMessageBytes: 4096 }` with `maxBytes:
   * 4096`: a publish over it must be refused with INVALID_ARGUMENT naming the option before
   * anything is sent. Skipped without it (memory has no size limit).
   */
  sizeLimit?: { overrides: Partial<PlugmqConfig>; option: string; maxBytes: number };
}

export type CapabilityName = keyof Capabilities;

/**
 * What every scenario shares: the managers it opened (closed after each test), cleanups that
 * release handlers a test left blocked, the driver's capabilities and scaled timings.
 */
export class ConformanceEnv {
  readonly scale: number;
  private caps: Capabilities | undefined;
  private probe: QueueManager | undefined;
  private managers: QueueManager[] = [];
  private cleanups: (() => unknown)[] = [];
  /** The log of the managers the running test created (see LogRecorder). */
  readonly logs = new LogRecorder();

  constructor(readonly options: ConformanceOptions) {
    const scale = options.timeScale ?? 1;
    if (!(typeof scale === 'number' && Number.isFinite(scale) && scale > 0)) {
      throw new Error(`runConformance: timeScale must be a positive number (got ${String(scale)})`);
    }
    this.scale = scale;
  }

  /** Scales a duration by `timeScale`. */
  ms(value: number): number {
    return Math.round(value * this.scale);
  }

  /** Generous bound for anything that should happen (a delivery, a close). */
  get patience(): number {
    return this.ms(5_000);
  }

  /** How long a test waits to be confident something does NOT happen. */
  get quiet(): number {
    return this.ms(300);
  }

  /** Per-test timeout passed to it(). */
  get testTimeout(): number {
    return this.ms(30_000);
  }

  get capabilities(): Capabilities {
    if (!this.caps) throw new Error('runConformance: capabilities are read in beforeAll; none yet');
    return this.caps;
  }

  /** beforeAll: one manager, kept open for the whole suite, tells the driver's capabilities. */
  async setup(): Promise<void> {
    this.probe = await this.options.create();
    this.caps = { ...this.probe.capabilities };
  }

  async teardown(): Promise<void> {
    await this.cleanup();
    await this.probe?.close();
    this.probe = undefined;
  }

  /** afterEach: release blocked handlers, then close every manager the test opened. */
  async cleanup(): Promise<void> {
    const cleanups = this.cleanups.splice(0);
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // A cleanup that fails must not keep managers open.
      }
    }
    const managers = this.managers.splice(0);
    const results = await Promise.allSettled(
      managers.map((manager) =>
        withTimeout(manager.close(), this.ms(60_000), 'manager.close() in afterEach'),
      ),
    );
    const failure = results.find((result) => result.status === 'rejected');
    if (failure && failure.status === 'rejected') throw failure.reason;
  }

  /** A fresh manager on the shared broker, closed after the test. */
  async create(overrides?: Partial<PlugmqConfig>): Promise<QueueManager> {
    const manager = await this.options.create({ logger: this.logs.logger, ...overrides });
    this.managers.push(manager);
    return manager;
  }

  /** Runs `fn` in afterEach before managers close (e.g. release a gate a handler waits on). */
  onCleanup(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  type(prefix = 'conformance'): string {
    return uniqueType(prefix);
  }

  group(prefix = 'group'): string {
    return uniqueGroup(prefix);
  }

  /** Skips the running test (counted as skipped) when the driver lacks `capability`. */
  requires(context: TestContext, ...capabilities: CapabilityName[]): void {
    const missing = capabilities.filter((name) => !this.capabilities[name]);
    if (missing.length > 0) {
      context.skip(`${this.options.name}: capabilities.${missing.join(', capabilities.')} is false`);
    }
  }

  /** Skips the running test when the driver HAS `capability` (refusal paths, non-persistent behaviour). */
  lacks(context: TestContext, capability: CapabilityName): void {
    if (this.capabilities[capability]) {
      context.skip(
        `${this.options.name}: capabilities.${capability} is true; this scenario is for drivers where it is false`,
      );
    }
  }
}
