import {
  DEAD_LETTER_GROUP,
  type DeadLetterState,
  type Envelope,
  type GroupState,
  type TransportInspection,
  type TransportInspectQuery,
} from '@plugmq/core/driver';
import { Cluster, type Redis } from 'ioredis';
import { isBusyGroup, type RedisClient } from './connection.js';
import { LuaScript, type Scripts } from './scripts.js';
import { groupKeys, MAX_LEVEL, type TypeKeys, typeKeys } from './topology.js';
import { envelopeFromFields, timestampOfId } from './wire.js';

/** SCAN page size: one call walks the keyspace in pages of this many keys. */
const SCAN_COUNT = 1000;
/** Where a group's lag is unknown (entries deleted after its cursor), counted up to this many. */
const COUNT_CAP = 10_000;

/** One group of one stream, from XINFO GROUPS (Redis 7: `entries-read`, `lag`). */
interface GroupInfo {
  readonly name: string;
  readonly consumers: number;
  readonly pending: number;
  readonly lastDeliveredId: string;
  readonly lag: number | null;
}

type Entry = [Buffer, Buffer[]];

function parseGroups(reply: unknown): GroupInfo[] {
  return (reply as unknown[][]).map((flat) => {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1]);
    const lag = fields.get('lag');
    return {
      name: String(fields.get('name')),
      consumers: Number(fields.get('consumers') ?? 0),
      pending: Number(fields.get('pending') ?? 0),
      lastDeliveredId: String(fields.get('last-delivered-id') ?? '0-0'),
      lag: lag === null || lag === undefined ? null : Number(lag),
    };
  });
}

/** XINFO GROUPS, [] for a stream that does not exist (yet). */
async function groupsOf(client: RedisClient, stream: string): Promise<GroupInfo[]> {
  try {
    return parseGroups(await client.xinfo('GROUPS', stream));
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return [];
    throw error;
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

/** Every type with a stream under `prefix` (SCAN on every master of a Cluster). */
async function scanTypes(client: RedisClient, prefix: string): Promise<string[]> {
  const pattern = `${escapeGlob(prefix)}:{*}`;
  const main = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\{([A-Za-z0-9._-]+)\\}$`);
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  const types = new Set<string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', 'stream');
      cursor = next;
      for (const key of keys) {
        const match = main.exec(key);
        if (match) types.add(match[1] as string);
      }
    } while (cursor !== '0');
  }
  return [...types];
}

/** The entries after `after` (exclusive), at most `count`. */
function entriesAfter(client: RedisClient, stream: string, after: string, count: number): Promise<Entry[]> {
  return client.xrangeBuffer(stream, `(${after}`, '+', 'COUNT', count) as Promise<Entry[]>;
}

/**
 * Everything inspect() needs of one type, in one call (one slot: the retry keys share the type's
 * hash tag). KEYS: the type's stream. Per group: name, consumers, pending, lag (-1 where Redis
 * cannot tell), last-delivered-id, first waiting id, oldest pending id, then its retry stream's
 * length, pending and first waiting id, and its retry delay set's size.
 */
const INSPECT_TYPE = `if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local function fields(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end
local function firstAfter(key, last)
  local first = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1)[1]
  if first then return first[1] end
  return false
end
local out = {}
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = fields(flat)
  local lag = g['lag']
  if not lag then lag = -1 end
  local oldestPending = false
  if g['pending'] > 0 then oldestPending = redis.call('XPENDING', KEYS[1], g['name'])[2] end
  local retry = KEYS[1] .. ':retry:' .. g['name']
  local retryLength, retryPending, retryFirst = 0, 0, false
  if redis.call('EXISTS', retry) == 1 then
    retryLength = redis.call('XLEN', retry)
    for _, rflat in ipairs(redis.call('XINFO', 'GROUPS', retry)) do
      local r = fields(rflat)
      if r['name'] == g['name'] then
        retryPending = r['pending']
        retryFirst = firstAfter(retry, r['last-delivered-id'])
      end
    end
  end
  out[#out + 1] = {g['name'], g['consumers'], g['pending'], lag, g['last-delivered-id'],
    firstAfter(KEYS[1], g['last-delivered-id']), oldestPending,
    retryLength, retryPending, retryFirst, redis.call('ZCARD', retry .. ':delay')}
end
return out`;

const INSPECT_TYPE_SCRIPT = new LuaScript(INSPECT_TYPE, 1);

type TypeReply = [
  name: string,
  consumers: number,
  pending: number,
  lag: number,
  lastDeliveredId: string,
  firstWaitingId: string | null,
  oldestPendingId: string | null,
  retryLength: number,
  retryPending: number,
  retryFirstId: string | null,
  retryDelayed: number,
][];

interface GroupFigures {
  readonly name: string;
  readonly consumers: number;
  /** Waiting for delivery: main stream lag + retry stream entries not delivered. */
  readonly waiting: number;
  readonly pending: number;
  readonly oldestWaitingMs: number | undefined;
  /** Oldest of waiting and pending (a dead letter held by a replayer is still stored). */
  readonly oldestStoredMs: number | undefined;
  readonly retryBacklog: number;
}

function ageOf(id: string | null, now: number): number | undefined {
  const at = id === null ? undefined : timestampOfId(id);
  return at === undefined ? undefined : Math.max(0, now - at);
}

function olderOf(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/**
 * The groups of one type. A retry stream's acked entries are deleted, so its length is exactly
 * pending + not delivered; a lag Redis cannot tell (entries deleted after the cursor) is counted.
 */
async function typeFigures(
  client: RedisClient,
  scripts: Scripts,
  stream: string,
  now: number,
): Promise<GroupFigures[]> {
  const reply = await scripts.run<TypeReply>(INSPECT_TYPE_SCRIPT, [stream]);
  return Promise.all(
    reply.map(async (row) => {
      const [name, consumers, pending, lag, lastId, firstId, oldestPendingId] = row;
      const [, , , , , , , retryLength, retryPending, retryFirstId, retryDelayed] = row;
      const waitingMain = lag >= 0 ? lag : (await entriesAfter(client, stream, lastId, COUNT_CAP)).length;
      const oldestWaitingMs = olderOf(ageOf(firstId, now), ageOf(retryFirstId, now));
      return {
        name,
        consumers,
        waiting: waitingMain + Math.max(0, retryLength - retryPending),
        pending: pending + retryPending,
        oldestWaitingMs,
        oldestStoredMs: olderOf(oldestWaitingMs, ageOf(oldestPendingId, now)),
        retryBacklog: retryDelayed,
      };
    }),
  );
}

/**
 * The streams of a type's priority levels in use (the type's own stream first), then its
 * partition streams (`partitions`: keyed messages).
 */
async function levelStreams(
  client: RedisClient,
  prefix: string,
  type: string,
  partitions: number,
): Promise<TypeKeys[]> {
  const main = typeKeys(prefix, type);
  const levels = (await client.smembers(main.levels))
    .map(Number)
    .filter((level) => Number.isInteger(level) && level >= 1 && level <= MAX_LEVEL)
    .sort((a, b) => b - a);
  const parts = Array.from({ length: partitions }, (_, partition) => typeKeys(prefix, type, 0, partition));
  return [main, ...levels.map((level) => typeKeys(prefix, type, level)), ...parts];
}

/**
 * A type's groups over all its levels and partitions: a group's figures are the sums of its
 * figures on each level (partition) stream and its retry stream; ages the oldest of them.
 */
async function allLevelFigures(
  client: RedisClient,
  scripts: Scripts,
  prefix: string,
  type: string,
  now: number,
  partitions: number,
): Promise<GroupFigures[]> {
  const streams = await levelStreams(client, prefix, type, partitions);
  const perLevel = await Promise.all(streams.map((keys) => typeFigures(client, scripts, keys.stream, now)));
  const merged = new Map<string, GroupFigures>();
  // A group exists on a level (partition) stream only if it exists on the type's (PUBLISH_LEVEL
  // copies them; a partitioned subscription creates its group on the type's stream too).
  for (const group of perLevel[0] ?? []) merged.set(group.name, group);
  for (const figures of perLevel.slice(1)) {
    for (const group of figures) {
      const sum = merged.get(group.name);
      if (!sum) continue;
      merged.set(group.name, {
        name: group.name,
        consumers: Math.max(sum.consumers, group.consumers),
        waiting: sum.waiting + group.waiting,
        pending: sum.pending + group.pending,
        oldestWaitingMs: olderOf(sum.oldestWaitingMs, group.oldestWaitingMs),
        oldestStoredMs: olderOf(sum.oldestStoredMs, group.oldestStoredMs),
        retryBacklog: sum.retryBacklog + group.retryBacklog,
      });
    }
  }
  return [...merged.values()];
}

/**
 * Backlog per (type, group) from the streams themselves, one script call per type (INSPECT_TYPE:
 * XINFO GROUPS for lag, pending, consumers and cursor; the first entry after the cursor for the
 * oldest waiting message; the group's retry stream and retry delay set). Dead letters are the
 * reserved group's figures on each dead-letter type. On a Cluster the types are read one after
 * the other: auto-pipelined commands for several slots would fail together on one MOVED.
 */
export async function inspectRedis(
  client: RedisClient,
  scripts: Scripts,
  prefix: string,
  query: TransportInspectQuery,
  partitions = 0,
): Promise<TransportInspection> {
  const now = Date.now();
  const types = new Set(query.types ?? (await scanTypes(client, prefix)));
  if (query.types === undefined) for (const type of query.deadLetterTypes) types.add(type);
  for (const { type } of query.groups ?? []) types.add(type);
  const read = async (type: string) => ({
    type,
    figures: await allLevelFigures(client, scripts, prefix, type, now, partitions),
  });
  const perType =
    client instanceof Cluster
      ? await sequentially([...types], read)
      : await Promise.all([...types].map(read));
  const groups: GroupState[] = [];
  const deadLetters = new Map<string, DeadLetterState>();
  for (const { type, figures } of perType) {
    for (const group of figures) {
      if (group.name === DEAD_LETTER_GROUP) {
        deadLetters.set(type, {
          type,
          count: group.waiting + group.pending,
          oldestAgeMs: group.oldestStoredMs,
        });
        continue;
      }
      groups.push({
        type,
        group: group.name,
        backlog: group.waiting,
        inFlight: group.pending,
        oldestWaitingMs: group.oldestWaitingMs,
        consumers: group.consumers,
        retryBacklog: group.retryBacklog,
      });
    }
  }
  for (const type of query.deadLetterTypes) {
    if (!deadLetters.has(type)) deadLetters.set(type, { type, count: 0, oldestAgeMs: undefined });
  }
  return { groups, deadLetters: [...deadLetters.values()] };
}

async function sequentially<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (const item of items) results.push(await work(item));
  return results;
}

/**
 * A group on `type` from the stream's end, created with the stream if need be: every entry
 * added from now on waits for it.
 */
export async function ensureRedisGroup(
  client: RedisClient,
  prefix: string,
  type: string,
  group: string,
): Promise<void> {
  // On a Cluster, ioredis' auto-pipelining can batch this with a command for another slot and
  // fail the batch with MOVED (see the subscription's createGroups): the create is tried again.
  for (let attempt = 1; ; attempt++) {
    try {
      await client.xgroup('CREATE', typeKeys(prefix, type).stream, group, '$', 'MKSTREAM');
      return;
    } catch (error) {
      if (isBusyGroup(error)) return;
      if (attempt >= 5 || !/^(MOVED|ASK) /.test((error as Error).message ?? '')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

/** Entries of one stream a group has not settled: pending (delivered) ones, then the waiting ones. */
async function storedEntries(
  client: RedisClient,
  stream: string,
  info: GroupInfo | undefined,
  limit: number,
): Promise<Entry[]> {
  if (info === undefined) return [];
  const pendingIds =
    info.pending === 0
      ? []
      : ((await client.xpending(stream, info.name, '-', '+', limit)) as [string, ...unknown[]][]).map(
          ([id]) => id,
        );
  const [pending, waiting] = await Promise.all([
    Promise.all(
      pendingIds.map(async (id) => (await client.xrangeBuffer(stream, id, id))[0] as Entry | undefined),
    ),
    entriesAfter(client, stream, info.lastDeliveredId, limit),
  ]);
  return [...pending.filter((entry): entry is Entry => entry !== undefined), ...waiting];
}

/**
 * Up to `limit` messages `group` has not settled on `type` (its retry stream and every priority
 * level included), oldest
 * publish first, read with XPENDING/XRANGE: nothing is delivered or claimed.
 */
export async function peekRedis(
  client: RedisClient,
  prefix: string,
  type: string,
  group: string,
  limit: number,
  partitions = 0,
): Promise<Envelope[]> {
  const levels = await levelStreams(client, prefix, type, partitions);
  const find = (infos: GroupInfo[]) => infos.find((info) => info.name === group);
  const stored = async (stream: string) =>
    storedEntries(client, stream, find(await groupsOf(client, stream)), limit);
  const perStream = await Promise.all(
    levels.flatMap(({ level, partition }) => {
      const keys = groupKeys(prefix, type, group, level, partition);
      return [stored(keys.stream), stored(keys.retry)];
    }),
  );
  return perStream
    .flat()
    .map(([id, fields]) => envelopeFromFields(fields, { type, id: id.toString() }))
    .sort((a, b) => a.timestamp - b.timestamp)
    .slice(0, limit);
}
