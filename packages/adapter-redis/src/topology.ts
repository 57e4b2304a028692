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
  readonly stream: string;
  readonly delay: DelayKeys;
}

export interface GroupKeys extends TypeKeys {
  readonly group: string;
  readonly retry: string;
  readonly retryDelay: DelayKeys;
}

function delayKeys(target: string): DelayKeys {
  return { schedule: `${target}:delay`, data: `${target}:delay:data`, target };
}

export function typeKeys(prefix: string, type: string): TypeKeys {
  const stream = `${prefix}:{${type}}`;
  return { type, stream, delay: delayKeys(stream) };
}

export function groupKeys(prefix: string, type: string, group: string): GroupKeys {
  const base = typeKeys(prefix, type);
  const retry = `${base.stream}:retry:${group}`;
  return { ...base, group, retry, retryDelay: delayKeys(retry) };
}

export function replyKey(prefix: string, id: string): string {
  return `${prefix}:reply:{${id}}`;
}
