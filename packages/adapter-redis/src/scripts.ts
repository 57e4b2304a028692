import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.js';

/**
 * Lua scripts: each touches the keys of one message type only (one hash tag, one cluster slot),
 * so it runs atomically, also with several processes: a due entry is moved exactly once, and a
 * retried entry is acknowledged and re-queued in one step (never both or neither lost).
 */

/** Server time in ms: every process compares due times against the one clock. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Delayed publish. KEYS: schedule zset, data stream. ARGV: delayMs, fields… Returns the due time. */
const SCHEDULE = `${NOW}
local due = now + tonumber(ARGV[1])
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('ZADD', KEYS[1], due, id)
return due`;

/**
 * Publish that must reach a group (mandatory). KEYS: stream. ARGV: maxLen (0: none), fields…
 * Returns the new id, or false when the stream has no consumer group.
 */
const PUBLISH_MANDATORY = `if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if #redis.call('XINFO', 'GROUPS', KEYS[1]) == 0 then return false end
if ARGV[1] ~= '0' then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))`;

/**
 * Publish (or schedule) on a priority level's stream, or a partition's (`partitions`: level '0',
 * nothing added to the level set). KEYS: the type's stream, the level's
 * stream, the type's level set, the level's delay zset and delay data stream. ARGV: level,
 * mandatory (1/0), maxLen (0: none), delayMs (0: none), fields… Every group of the type's stream
 * missing on the level stream is created there at '$' first, so the entry reaches exactly the
 * groups that exist now (a group created later starts after it, like on the type's stream) and
 * no group misses an entry before its consumers learn of the level. Returns the new id, the due
 * time of a delayed one, or false (mandatory, no group).
 */
const PUBLISH_LEVEL = `local groups = {}
if redis.call('EXISTS', KEYS[1]) == 1 then groups = redis.call('XINFO', 'GROUPS', KEYS[1]) end
local delay = tonumber(ARGV[4])
if ARGV[2] == '1' and delay <= 0 and #groups == 0 then return false end
if #groups > 0 then
  local have = {}
  if redis.call('EXISTS', KEYS[2]) == 1 then
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[2])) do have[g[2]] = true end
  end
  for _, g in ipairs(groups) do
    if not have[g[2]] then redis.call('XGROUP', 'CREATE', KEYS[2], g[2], '$', 'MKSTREAM') end
  end
end
if ARGV[1] ~= '0' then redis.call('SADD', KEYS[3], ARGV[1]) end
if delay > 0 then
  ${NOW}
  local id = redis.call('XADD', KEYS[5], '*', unpack(ARGV, 5))
  redis.call('ZADD', KEYS[4], now + delay, id)
  return now + delay
end
if ARGV[3] ~= '0' then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 5))
end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))`;

/**
 * Priority read: XREADGROUP '>' on each stream in turn (highest level first, a level's retry
 * stream before its stream) until `count` entries are read, in one round trip. KEYS: the
 * streams. ARGV: group, consumer, count. Returns what XREADGROUP returns.
 */
const READ_LEVELS = `local out = {}
local left = tonumber(ARGV[3])
for i = 1, #KEYS do
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', KEYS[i], '>')
  if reply and reply[1] and #reply[1][2] > 0 then
    out[#out + 1] = reply[1]
    left = left - #reply[1][2]
    if left <= 0 then break end
  end
end
return out`;

/**
 * Retry or hand back one entry to its group only. KEYS: source stream, the group's retry stream,
 * its delay zset, its delay data stream. ARGV: group, entry id, delayMs, 1 to XDEL the source
 * entry (it came from the retry stream, which only this group reads), fields…
 * Returns -1 when the entry was no longer pending (settled elsewhere: nothing re-queued).
 */
const REQUEUE = `if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
if ARGV[4] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
local delay = tonumber(ARGV[3])
if delay <= 0 then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
  return 0
end
${NOW}
local id = redis.call('XADD', KEYS[4], '*', unpack(ARGV, 5))
redis.call('ZADD', KEYS[3], now + delay, id)
return now + delay`;

/**
 * Ack entries of a retry stream and delete them (only one group ever reads it).
 * KEYS: stream. ARGV: group, id, id, …
 */
const ACK_DELETE = `local ids = {unpack(ARGV, 2)}
local n = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
return n`;

/**
 * Move due entries into their stream. KEYS: schedule zset, data stream, target stream. ARGV: limit.
 * Returns { moved, next due time or -1, server now }.
 */
const PROMOTE = `${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  local entry = redis.call('XRANGE', KEYS[2], id, id)
  if entry[1] then
    redis.call('XADD', KEYS[3], '*', unpack(entry[1][2]))
    redis.call('XDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[1], id)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return { #due, tonumber(nxt[2] or '-1'), now }`;

/**
 * Safe trim. KEYS: stream. Trims (XTRIM MINID, exact) below the lowest entry some group still
 * needs: for each group its oldest pending entry, or its last-delivered id when nothing is pending.
 * A stream without groups is not trimmed (its entries wait for a group starting from 'earliest').
 * Returns the number of entries removed, or -1 when nothing could be trimmed.
 */
const TRIM = `if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return -1 end
local floor = nil
for _, g in ipairs(groups) do
  local name, pending, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1]
    elseif g[i] == 'pending' then pending = g[i + 1]
    elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local need = last
  if pending > 0 then need = redis.call('XPENDING', KEYS[1], name)[2] end
  if floor == nil or less(need, floor) then floor = need end
end
if floor == '0-0' then return -1 end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)`;

type Arg = string | number | Buffer;

/** A Lua script and the number of its KEYS (the first arguments of every call). */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly lua: string,
    readonly numberOfKeys: number,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
}

/** The scripts a publish may store with (the rest run through `Scripts`' own methods). */
export const STORE_SCRIPTS = {
  schedule: new LuaScript(SCHEDULE, 2),
  publishMandatory: new LuaScript(PUBLISH_MANDATORY, 1),
  publishLevel: new LuaScript(PUBLISH_LEVEL, 5),
} as const;

/** See READ_LEVELS (its number of keys varies: set per call). */
export const READ_LEVELS_LUA = READ_LEVELS;

const REQUEUE_SCRIPT = new LuaScript(REQUEUE, 4);
const ACK_DELETE_SCRIPT = new LuaScript(ACK_DELETE, 1);
const PROMOTE_SCRIPT = new LuaScript(PROMOTE, 3);
const TRIM_SCRIPT = new LuaScript(TRIM, 1);

/**
 * Runs the scripts on one client the way ioredis' own scripts do: EVAL on a script's first use
 * since the client (re)connected, EVALSHA after that, EVAL again when Redis answers NOSCRIPT (it
 * restarted or its script cache was flushed). Not ioredis' `defineCommand`: ioredis copies every
 * defined script onto each pipeline it builds, one per auto-pipelined batch, and that copying cost
 * ~4% of the CPU per message of a publish-and-consume run at concurrency 16.
 */
export class Scripts {
  private readonly loaded = new Set<LuaScript>();

  constructor(private readonly client: RedisClient) {
    client.on('ready', () => this.loaded.clear());
  }

  run<T>(script: LuaScript, args: readonly Arg[]): Promise<T> {
    if (!this.loaded.has(script)) {
      this.loaded.add(script);
      return this.eval(script, args);
    }
    return (this.client.evalsha(script.sha, script.numberOfKeys, ...args) as Promise<T>).catch(
      (error: unknown) => {
        if (!isNoScript(error)) throw error;
        return this.eval<T>(script, args);
      },
    );
  }

  private eval<T>(script: LuaScript, args: readonly Arg[]): Promise<T> {
    return this.client.eval(script.lua, script.numberOfKeys, ...args) as Promise<T>;
  }

  /** Inside a MULTI always EVAL: a NOSCRIPT there would fail one command after the others ran. */
  static queue(multi: ChainableCommander, script: LuaScript, args: readonly Arg[]): void {
    multi.eval(script.lua, script.numberOfKeys, ...args);
  }

  /** See REQUEUE. */
  requeue(
    keys: readonly [source: string, retry: string, schedule: string, data: string],
    group: string,
    id: string,
    delayMs: number,
    deleteSource: 0 | 1,
    fields: readonly Arg[],
  ): Promise<number> {
    return this.run(REQUEUE_SCRIPT, [...keys, group, id, delayMs, deleteSource, ...fields]);
  }

  /** See ACK_DELETE. */
  ackDelete(stream: string, group: string, ids: readonly string[]): Promise<number> {
    return this.run(ACK_DELETE_SCRIPT, [stream, group, ...ids]);
  }

  /** See PROMOTE. */
  promote(
    schedule: string,
    data: string,
    target: string,
    limit: number,
  ): Promise<[moved: number, nextDue: number, now: number]> {
    return this.run(PROMOTE_SCRIPT, [schedule, data, target, limit]);
  }

  /** See TRIM. */
  trim(stream: string): Promise<number> {
    return this.run(TRIM_SCRIPT, [stream]);
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
