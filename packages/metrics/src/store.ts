import type { Inspection } from '@plugmq/core';

/**
 * Plain counters per label set, updated on every event with no hashing or allocation: nested maps
 * driver → type → group, and fixed bucket arrays for durations. The registry reads them only when
 * scraped (see `collectors.ts`). Going through prom-client's Counter/Histogram instead hashes the
 * label set on every call, which halved the memory driver's throughput in measurements.
 */

export interface Histogram {
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export interface TypeRow {
  readonly labels: { driver: string; type: string };
  published: number;
  unrouted: number;
}

export interface GroupRow {
  readonly labels: { driver: string; type: string; group: string };
  acked: number;
  failed: number;
  retried: number;
  dropped: number;
  inFlight: number;
  readonly deadLettered: Map<string, number>;
  readonly ackedSeconds: Histogram;
  readonly failedSeconds: Histogram;
}

export class MetricsStore {
  readonly types = new Map<string, Map<string, TypeRow>>();
  readonly groups = new Map<string, Map<string, Map<string, GroupRow>>>();
  /** The latest `inspect()` per driver: the broker's view, whichever manager read it last. */
  readonly inspections = new Map<string, Inspection>();

  constructor(readonly buckets: readonly number[]) {}

  typeRow(driver: string, type: string): TypeRow {
    let byType = this.types.get(driver);
    if (!byType) {
      byType = new Map();
      this.types.set(driver, byType);
    }
    let row = byType.get(type);
    if (!row) {
      row = { labels: { driver, type }, published: 0, unrouted: 0 };
      byType.set(type, row);
    }
    return row;
  }

  groupRow(driver: string, type: string, group: string): GroupRow {
    let byType = this.groups.get(driver);
    if (!byType) {
      byType = new Map();
      this.groups.set(driver, byType);
    }
    let byGroup = byType.get(type);
    if (!byGroup) {
      byGroup = new Map();
      byType.set(type, byGroup);
    }
    let row = byGroup.get(group);
    if (!row) {
      row = {
        labels: { driver, type, group },
        acked: 0,
        failed: 0,
        retried: 0,
        dropped: 0,
        inFlight: 0,
        deadLettered: new Map(),
        ackedSeconds: this.histogram(),
        failedSeconds: this.histogram(),
      };
      byGroup.set(group, row);
    }
    return row;
  }

  observe(histogram: Histogram, seconds: number): void {
    const { buckets } = this;
    let index = 0;
    while (index < buckets.length && seconds > (buckets[index] as number)) index++;
    (histogram.counts as Float64Array)[index] = (histogram.counts[index] ?? 0) + 1;
    histogram.sum += seconds;
    histogram.count++;
  }

  *typeRows(): Iterable<TypeRow> {
    for (const byType of this.types.values()) yield* byType.values();
  }

  *groupRows(): Iterable<GroupRow> {
    for (const byType of this.groups.values()) for (const byGroup of byType.values()) yield* byGroup.values();
  }

  /** `registry.resetMetrics()`: counters back to zero; in-flight stays true to what runs now. */
  reset(): void {
    for (const row of this.typeRows()) {
      row.published = 0;
      row.unrouted = 0;
    }
    for (const row of this.groupRows()) {
      row.acked = 0;
      row.failed = 0;
      row.retried = 0;
      row.dropped = 0;
      row.deadLettered.clear();
      for (const histogram of [row.ackedSeconds, row.failedSeconds]) {
        histogram.counts.fill(0);
        histogram.sum = 0;
        histogram.count = 0;
      }
    }
  }

  private histogram(): Histogram {
    return { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }
}
