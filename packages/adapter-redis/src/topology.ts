/**
 * Key layout. Every key of one message type carries the hash tag `{type}`, so on Redis Cluster
 * they share one slot: the Lua scripts that move entries between them are atomic and legal.
 *
 *   <prefix>:{<type>}                      the type's stream; one consumer group per PlugMQ group
 *   <prefix>:{<type>}:delay                sorted set of delayed publishes (score: due time, ms)
 *   <prefix>:{<type>}:delay:data           stream holding the delayed entries' fields until due
 *   <prefix>:{<type>}:retry:<group>        the group's retry stream (retried and handed-back
 *                                          messages: they reach this group only)
 *   <prefix>:{<type>}:retry:<group>:delay  …and its delayed retries (sorted set + data stream)
 *   <prefix>:{<type>}:p<n>                 priority level n (1..9): a stream of its own with the
 *                                          same suffixes as above (`:p<n>:delay`, `:p<n>:retry:<group>`);
 *                                          priority 0 and no priority stay on the type's stream
 *   <prefix>:{<type>}:levels               set of the levels ever published to (see priority-levels.ts)
 *   <prefix>:{<type>}:k<p>                 partition p (0..N-1) with `partitions: N`: keyed messages
 *                                          of the type, same suffixes as the type's stream
 *                                          (`:k<p>:delay`, `:k<p>:retry:<group>`); unkeyed ones stay
 *                                          on the type's stream (see partitions.ts)
 *   <prefix>:{<type>}:lease:<group>:<p>    who reads partition p for the group (value: consumer
 *                                          name, expiring after leaseMs unless renewed)
 *   <prefix>:{<type>}:members:<group>      sorted set of the group's live subscriptions (score:
 *                                          when its entry expires), for the fair share
 *   <prefix>:reply:{<uuid>}                a manager's reply list (request/reply)
 */
export interface DelayKeys {
  /** Sorted set: member = id of the entry in `data`, score = due time in ms (server clock). */
  readonly schedule: string;
  readonly data: string;
  /** The stream the entries move to when due. */
  readonly target: string;
}

export interface TypeKeys {
  readonly type: string;
  /** Priority level of `stream`: 0 is the type's own stream. */
  readonly level: number;
  /** Partition of `stream` (`partitions`), undefined for the type's stream and its levels. */
  readonly partition: number | undefined;
  readonly stream: string;
  readonly delay: DelayKeys;
  /** The type's set of levels in use (shared by all levels). */
  readonly levels: string;
}

/** Highest priority core accepts (`validation.ts`: an integer from 0 to 9). */
export const MAX_LEVEL = 9;

export interface GroupKeys extends TypeKeys {
  readonly group: string;
  readonly retry: string;
  readonly retryDelay: DelayKeys;
}

function delayKeys(target: string): DelayKeys {
  return { schedule: `${target}:delay`, data: `${target}:delay:data`, target };
}

/**
 * Level 0 (no priority) is today's key layout, so existing streams and deployments are untouched.
 * A partition is never combined with a level (a key with a priority is refused with partitions).
 */
export function typeKeys(prefix: string, type: string, level = 0, partition?: number): TypeKeys {
  const base = `${prefix}:{${type}}`;
  const stream = partition !== undefined ? `${base}:k${partition}` : level > 0 ? `${base}:p${level}` : base;
  return { type, level, partition, stream, delay: delayKeys(stream), levels: `${base}:levels` };
}

export function groupKeys(
  prefix: string,
  type: string,
  group: string,
  level = 0,
  partition?: number,
): GroupKeys {
  const base = typeKeys(prefix, type, level, partition);
  const retry = `${base.stream}:retry:${group}`;
  return { ...base, group, retry, retryDelay: delayKeys(retry) };
}

/** The lease of partition `partition` of `type` for `group` (same hash tag as the type's keys). */
export function leaseKey(prefix: string, type: string, group: string, partition: number): string {
  return `${prefix}:{${type}}:lease:${group}:${partition}`;
}

/** The group's live subscriptions on `type` (partition balancing). */
export function membersKey(prefix: string, type: string, group: string): string {
  return `${prefix}:{${type}}:members:${group}`;
}

export function replyKey(prefix: string, id: string): string {
  return `${prefix}:reply:{${id}}`;
}
