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
import { type GroupKeys, groupKeys, typeKeys } from './topology.js';
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

/** Waiting entries of a stream for a group: its lag, or counted where Redis cannot tell. */
async function waitingCount(client: RedisClient, stream: string, info: GroupInfo): Promise<number> {
  if (info.lag !== null) return info.lag;
  return (await entriesAfter(client, stream, info.lastDeliveredId, COUNT_CAP)).length;
}

/** Age of the first entry after the group's cursor, by its id (when Redis stored it). */
async function oldestAfter(client: RedisClient, stream: string, info: GroupInfo, now: number) {
  const [first] = await entriesAfter(client, stream, info.lastDeliveredId, 1);
  const at = first === undefined ? undefined : timestampOfId(first[0].toString());
  return at === undefined ? undefined : Math.max(0, now - at);
}

function olderOf(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

interface GroupFigures {
  /** Waiting for delivery: main stream lag + retry stream entries not delivered. */
  readonly waiting: number;
  readonly pending: number;
  readonly oldestWaitingMs: number | undefined;
  /** Oldest of waiting and pending (a dead letter held by a replayer is still stored). */
  readonly oldestStoredMs: number | undefined;
  readonly retryBacklog: number;
}

/**
 * One group's figures: the main stream (XINFO GROUPS gave `info`) and the group's own retry
 * stream, whose acked entries are deleted, so its length is exactly pending + not delivered.
 */
async function groupFigures(
  client: RedisClient,
  keys: GroupKeys,
  info: GroupInfo,
  now: number,
): Promise<GroupFigures> {
  const [retryGroups, retryLength, retryDelayed, waitingMain, oldestMain, pendingMain] = await Promise.all([
    groupsOf(client, keys.retry),
    client.xlen(keys.retry),
    client.zcard(keys.retryDelay.schedule),
    waitingCount(client, keys.stream, info),
    oldestAfter(client, keys.stream, info, now),
    info.pending > 0
      ? (client.xpending(keys.stream, info.name) as Promise<[number, string | null, ...unknown[]]>)
      : undefined,
  ]);
  const retryInfo = retryGroups.find((group) => group.name === info.name);
  const retryPending = retryInfo?.pending ?? 0;
  const retryWaiting = Math.max(0, retryLength - retryPending);
  const oldestRetry =
    retryInfo !== undefined && retryWaiting > 0
      ? await oldestAfter(client, keys.retry, retryInfo, now)
      : undefined;
  const oldestPendingAt = pendingMain?.[1] ? timestampOfId(pendingMain[1]) : undefined;
  const oldestWaitingMs = olderOf(oldestMain, oldestRetry);
  return {
    waiting: waitingMain + retryWaiting,
    pending: info.pending + retryPending,
    oldestWaitingMs,
    oldestStoredMs: olderOf(
      oldestWaitingMs,
      oldestPendingAt === undefined ? undefined : Math.max(0, now - oldestPendingAt),
    ),
    retryBacklog: retryDelayed,
  };
}

/**
 * Backlog per (type, group) from the streams themselves: XINFO GROUPS (lag, pending, consumers,
 * last-delivered-id), the group's retry stream (XLEN, its own XINFO GROUPS) and retry delay set
 * (ZCARD), the first entry after the cursor (XRANGE … COUNT 1) for the oldest waiting message.
 * Dead letters are the reserved group's figures on each dead-letter type.
 */
export async function inspectRedis(
  client: RedisClient,
  prefix: string,
  query: TransportInspectQuery,
): Promise<TransportInspection> {
  const now = Date.now();
  const types = new Set(query.types ?? (await scanTypes(client, prefix)));
  if (query.types === undefined) for (const type of query.deadLetterTypes) types.add(type);
  for (const { type } of query.groups ?? []) types.add(type);
  const perType = await Promise.all(
    [...types].map(async (type) => {
      const infos = await groupsOf(client, typeKeys(prefix, type).stream);
      return Promise.all(
        infos.map(async (info) => ({
          type,
          info,
          figures: await groupFigures(client, groupKeys(prefix, type, info.name), info, now),
        })),
      );
    }),
  );
  const groups: GroupState[] = [];
  const deadLetters = new Map<string, DeadLetterState>();
  for (const { type, info, figures } of perType.flat()) {
    if (info.name === DEAD_LETTER_GROUP) {
      deadLetters.set(type, {
        type,
        count: figures.waiting + figures.pending,
        oldestAgeMs: figures.oldestStoredMs,
      });
      continue;
    }
    groups.push({
      type,
      group: info.name,
      backlog: figures.waiting,
      inFlight: figures.pending,
      oldestWaitingMs: figures.oldestWaitingMs,
      consumers: info.consumers,
      retryBacklog: figures.retryBacklog,
    });
  }
  for (const type of query.deadLetterTypes) {
    if (!deadLetters.has(type)) deadLetters.set(type, { type, count: 0, oldestAgeMs: undefined });
  }
  return { groups, deadLetters: [...deadLetters.values()] };
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
  try {
    await client.xgroup('CREATE', typeKeys(prefix, type).stream, group, '$', 'MKSTREAM');
  } catch (error) {
    if (!isBusyGroup(error)) throw error;
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
 * Up to `limit` messages `group` has not settled on `type` (its retry stream included), oldest
 * publish first, read with XPENDING/XRANGE: nothing is delivered or claimed.
 */
export async function peekRedis(
  client: RedisClient,
  prefix: string,
  type: string,
  group: string,
  limit: number,
): Promise<Envelope[]> {
  const keys = groupKeys(prefix, type, group);
  const [mainGroups, retryGroups] = await Promise.all([
    groupsOf(client, keys.stream),
    groupsOf(client, keys.retry),
  ]);
  const find = (infos: GroupInfo[]) => infos.find((info) => info.name === group);
  const [main, retry] = await Promise.all([
    storedEntries(client, keys.stream, find(mainGroups), limit),
    storedEntries(client, keys.retry, find(retryGroups), limit),
  ]);
  return [...main, ...retry]
    .map(([id, fields]) => envelopeFromFields(fields, { type, id: id.toString() }))
    .sort((a, b) => a.timestamp - b.timestamp)
    .slice(0, limit);
}
