import type { BrokerSource } from '../src/brokers/index.js';

// Shared by the broker test files: each broker's tests run twice, once through BROKERS.md's order
// (a container on our CI) and once as a local process, so the fallback path is tested too.

export interface Variant {
  label: string;
  /** For smoke tests: any broker, the user's included. */
  smoke: readonly BrokerSource[];
  /** For restart/kill tests: only brokers the tests own. */
  faults: readonly BrokerSource[];
}

export const VARIANTS: readonly Variant[] = [
  { label: 'default order', smoke: ['env', 'container', 'process'], faults: ['container', 'process'] },
  { label: 'local process', smoke: ['process'], faults: ['process'] },
];

/** Fresh names per test so reruns against a user's long-lived broker never see old data. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Restart and kill tests: a graceful stop plus a fresh start, several times over, on 2 busy cores. */
export const FAULT_TEST_MS = 180_000;
