import { createHash } from 'node:crypto';
import { buffers, type RedisClient } from './connection.js';
import type { ReadReply, StreamRef } from './reader.js';
import { READ_LEVELS_LUA } from './scripts.js';
import { groupKeys, MAX_LEVEL, typeKeys } from './topology.js';
import { againWhileTransient } from './transient.js';

const READ_LEVELS_SHA = createHash('sha1').update(READ_LEVELS_LUA).digest('hex');

/** What the levels need from their subscription. */
export interface LevelsHost {
  readonly group: string;
  readonly stopped: boolean;
  /** Creates the group on `streams`, then reads, claims, trims and moves them like the others. */
  addStreams(streams: readonly StreamRef[]): Promise<void>;
}

/**
 * Priority for one subscription. Each level 1..9 of a type is a stream of its own
 * (`<type>:p<n>`, see topology.ts); priority 0 and no priority stay on the type's stream.
 *
 * Which levels exist is learned from the type's level set, which every prioritised publish adds
 * its level to (PUBLISH_LEVEL, in the same script as its XADD): at subscribe, and after every
 * read by a SCARD sent right behind the XREADGROUP on the reader's connection (answered with it,
 * no round trip of its own; a blocked read also wakes every `blockMs`). A group never misses a
 * level's entry while its consumers do not know the level yet: PUBLISH_LEVEL creates the type's
 * groups on the level stream before adding to it, so the entry waits there, and a level is
 * discovered at the latest one read (or `blockMs`) later.
 *
 * A type nobody published a priority to has no level set: its consumers read exactly as before,
 * the SCARD per read being the whole cost.
 */
export class PriorityLevels {
  /** Type → its levels (1..9) this subscription reads. */
  private readonly known = new Map<string, Set<number>>();
  /** Type → the size of its level set when last read (a change means: read the set again). */
  private readonly sizes = new Map<string, number>();
  private adding: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly host: LevelsHost,
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  levelsKey(type: string): string {
    return typeKeys(this.prefix, type).levels;
  }

  /** Whether the level set of `type` has a size other than when last read. */
  changed(type: string, size: number): boolean {
    return (this.sizes.get(type) ?? 0) !== size;
  }

  /**
   * Reads the level set of `type` and adds the streams of levels new to this subscription (the
   * level's stream and the group's retry stream of it). One discovery at a time: two readers
   * noticing together add a level once.
   */
  discover(type: string): Promise<StreamRef[]> {
    const run = async (): Promise<StreamRef[]> => {
      // A Cluster failing over (CLUSTERDOWN) while a subscription starts: ride it through.
      const members = await againWhileTransient(
        () => this.client.smembers(this.levelsKey(type)),
        () => !this.host.stopped,
      );
      const known = this.known.get(type) ?? new Set<number>();
      const levels: number[] = [];
      for (const member of members) {
        const level = Number(member);
        if (Number.isInteger(level) && level >= 1 && level <= MAX_LEVEL && !known.has(level)) {
          levels.push(level);
        }
      }
      const fresh: StreamRef[] = [];
      for (const level of levels) {
        const keys = groupKeys(this.prefix, type, this.host.group, level);
        fresh.push({ key: keys.stream, keys, retry: false }, { key: keys.retry, keys, retry: true });
      }
      if (fresh.length > 0) await this.host.addStreams(fresh);
      // Only once the groups exist: a failed add is found changed, and tried again, next read.
      for (const level of levels) known.add(level);
      this.known.set(type, known);
      this.sizes.set(type, members.length);
      return fresh;
    };
    const done = this.adding.then(run, run);
    this.adding = done.catch(() => {});
    return done;
  }
}

/**
 * The reading order of priority: highest level first, a level's retry stream (older, already
 * failed messages) before its stream.
 */
export function byPriority(streams: readonly StreamRef[]): StreamRef[] {
  return [...streams].sort((a, b) => b.keys.level - a.keys.level || Number(b.retry) - Number(a.retry));
}

/**
 * One non-blocking XREADGROUP per stream in `keys` (ordered by `byPriority`) until `count`
 * entries are read, in one round trip (READ_LEVELS); null when all are empty.
 */
export async function readHighestFirst(
  connection: RedisClient,
  keys: readonly string[],
  group: string,
  consumer: string,
  count: number,
): Promise<ReadReply> {
  const client = buffers(connection);
  const args: (string | number)[] = [READ_LEVELS_SHA, keys.length, ...keys, group, consumer, count];
  let reply: unknown;
  try {
    reply = await client.evalshaBuffer(...args);
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
    reply = await client.evalBuffer(READ_LEVELS_LUA, ...args.slice(1));
  }
  const read = reply as NonNullable<ReadReply>;
  return read.length > 0 ? read : null;
}
