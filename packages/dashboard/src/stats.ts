import type { PlugmqEvent } from '@plugmq/core';

/** Counters of one message type as seen by publishers. */
export interface TypeStats {
  type: string;
  published: number;
  unrouted: number;
  /** Messages per second over the last few seconds. */
  publishRate: number;
}

/** Counters of one (type, group): what one consumer group did with one type. */
export interface GroupStats {
  type: string;
  group: string;
  acked: number;
  failed: number;
  retried: number;
  deadLettered: number;
  dropped: number;
  inFlight: number;
  /** Handler runs per second (acked + failed) over the last few seconds. */
  handleRate: number;
  /** Mean handler time in ms since start. */
  meanMs: number;
}

interface GroupRow extends GroupStats {
  totalMs: number;
}

/** Samples kept for rates: the rate is the change over the oldest kept sample, about 5 s. */
const RATE_SAMPLES = 6;

/**
 * Live counters per type and per (type, group), fed by core's events, with rates computed from a
 * short history sampled by `tick()` (the dashboard calls it every second). Independent of
 * Prometheus: the page needs rates, which counters alone do not give without a time series store.
 */
export class LiveStats {
  private readonly types = new Map<string, TypeStats>();
  /** type → group → row: nested maps, so an event builds no key string. */
  private readonly groups = new Map<string, Map<string, GroupRow>>();
  private readonly history: { at: number; published: Map<string, number>; handled: Map<GroupRow, number> }[] =
    [];
  /** Totals per second for the page's chart, the last 120 s. */
  readonly series: { at: number; published: number; handled: number; failed: number }[] = [];
  private last = { published: 0, handled: 0, failed: 0 };

  /** Groups to leave out (the dashboard's own dead-letter reader). */
  constructor(private readonly hiddenGroups: ReadonlySet<string> = new Set()) {}

  readonly record = (event: PlugmqEvent): void => {
    switch (event.kind) {
      case 'published':
        this.type(event.type).published += event.count;
        return;
      case 'unrouted':
        this.type(event.type).unrouted++;
        return;
      case 'subscribed':
      case 'unsubscribed':
        return;
      default:
        break;
    }
    if (this.hiddenGroups.has(event.group)) return;
    const row = this.group(event.type, event.group);
    switch (event.kind) {
      case 'delivered':
        row.inFlight++;
        return;
      case 'handled':
        row.inFlight = Math.max(0, row.inFlight - 1);
        if (event.outcome === 'acked') row.acked++;
        else row.failed++;
        row.totalMs += event.durationMs;
        return;
      case 'retried':
        row.retried++;
        return;
      case 'dead-lettered':
        row.deadLettered++;
        return;
      case 'dropped':
        row.dropped++;
        return;
    }
  };

  /** Takes a rate sample; call about once a second. */
  tick(now = Date.now()): void {
    const published = new Map<string, number>();
    const handled = new Map<GroupRow, number>();
    for (const [type, row] of this.types) published.set(type, row.published);
    for (const row of this.groupRows()) handled.set(row, row.acked + row.failed);
    this.history.push({ at: now, published, handled });
    if (this.history.length > RATE_SAMPLES) this.history.shift();
    const totals = this.totals();
    this.series.push({
      at: now,
      published: totals.published - this.last.published,
      handled: totals.acked + totals.failed - this.last.handled,
      failed: totals.failed - this.last.failed,
    });
    if (this.series.length > 120) this.series.shift();
    this.last = { published: totals.published, handled: totals.acked + totals.failed, failed: totals.failed };
  }

  snapshot(): { types: TypeStats[]; groups: GroupStats[]; totals: ReturnType<LiveStats['totals']> } {
    const oldest = this.history[0];
    const newest = this.history[this.history.length - 1];
    const seconds = oldest && newest && newest.at > oldest.at ? (newest.at - oldest.at) / 1000 : 0;
    const rate = (now: number | undefined, then: number | undefined) =>
      seconds > 0 && now !== undefined ? Math.round(((now - (then ?? 0)) / seconds) * 10) / 10 : 0;
    const types = [...this.types.values()].map((row) => ({
      ...row,
      publishRate: rate(newest?.published.get(row.type), oldest?.published.get(row.type)),
    }));
    const groups = [...this.groupRows()].map((full) => {
      const { totalMs, ...row } = full;
      return {
        ...row,
        handleRate: rate(newest?.handled.get(full), oldest?.handled.get(full)),
        meanMs: row.acked + row.failed > 0 ? Math.round((totalMs / (row.acked + row.failed)) * 100) / 100 : 0,
      };
    });
    types.sort((a, b) => a.type.localeCompare(b.type));
    groups.sort((a, b) => a.type.localeCompare(b.type) || a.group.localeCompare(b.group));
    return { types, groups, totals: this.totals() };
  }

  totals() {
    const totals = { published: 0, acked: 0, failed: 0, retried: 0, deadLettered: 0, inFlight: 0 };
    for (const row of this.types.values()) totals.published += row.published;
    for (const row of this.groupRows()) {
      totals.acked += row.acked;
      totals.failed += row.failed;
      totals.retried += row.retried;
      totals.deadLettered += row.deadLettered;
      totals.inFlight += row.inFlight;
    }
    return totals;
  }

  private type(type: string): TypeStats {
    let row = this.types.get(type);
    if (!row) {
      row = { type, published: 0, unrouted: 0, publishRate: 0 };
      this.types.set(type, row);
    }
    return row;
  }

  private *groupRows(): Iterable<GroupRow> {
    for (const byGroup of this.groups.values()) yield* byGroup.values();
  }

  private group(type: string, group: string): GroupRow {
    let byGroup = this.groups.get(type);
    if (!byGroup) {
      byGroup = new Map();
      this.groups.set(type, byGroup);
    }
    let row = byGroup.get(group);
    if (!row) {
      row = {
        type,
        group,
        acked: 0,
        failed: 0,
        retried: 0,
        deadLettered: 0,
        dropped: 0,
        inFlight: 0,
        handleRate: 0,
        meanMs: 0,
        totalMs: 0,
      };
      byGroup.set(group, row);
    }
    return row;
  }
}
