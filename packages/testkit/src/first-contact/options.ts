import type { PlugmqConfig, QueueManager } from '@plugmq/core';

export interface FirstContactOptions {
  /** Shown in the describe() title, e.g. 'redis'. */
  name: string;
  /** A fresh manager on the test broker; overrides carry `logger` and core options. */
  create(overrides?: Partial<PlugmqConfig>): Promise<QueueManager>;
  /** Multiply waits for slow brokers (default 1). */
  timeScale?: number;
  /** How a first connect fails; only for drivers with a broker (memory has none). */
  connect?: ConnectFailureOptions;
}

export interface ConnectFailureOptions {
  /** The whole config (driver name included) for a broker at `host:port`, credentials `user:password` if given. */
  config(host: string, port: number, credentials?: { user: string; password: string }): PlugmqConfig;
  /** The connect timeout `config` sets: CONNECTION must come within it (plus start-up slack). */
  connectTimeoutMs: number;
  /**
   * The running test broker with credentials it refuses (a wrong password): the error must say
   * "authentication refused" well before the timeout, and never show the password. A string
   * instead says why the driver's test broker cannot refuse a login (the test is skipped with it).
   */
  refusedLogin(): Promise<{ config: PlugmqConfig; password: string } | string>;
  /** The running test broker's plain listener, addressed as TLS: "TLS handshake failed". */
  tlsMismatch?(): PlugmqConfig;
  /**
   * The adapter's module (source or build) and, for sources, core's entry: bundled into a
   * program plain `node` runs, so the check sees what an application's process sees.
   */
  child: { driverModule: string; coreEntry?: string };
}
