import { createHash } from 'node:crypto';
import type { KafkaClient } from './connection.js';

/** Kafka's topic name limit. */
const MAX_TOPIC = 249;

/** The shared topic replies travel on (see replies.ts). */
export const REPLY_TOPIC = 'plugmq.replies';

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/**
 * `<type>.retry.<group>`: the group-private topic a failed message waits in, so a retry reaches
 * only the group that failed and never blocks the type's partitions. Groups are free text, so
 * characters a topic name cannot hold (and over-long names) are replaced by a hash.
 */
export function retryTopic(type: string, group: string): string {
  const plain = `${type}.retry.${group}`;
  if (/^[A-Za-z0-9._-]+$/.test(group) && plain.length <= MAX_TOPIC) return plain;
  const safe = group.replace(/[^A-Za-z0-9._-]/g, '_');
  const hashed = `${type}.retry.${safe}`.slice(0, MAX_TOPIC - 13);
  return `${hashed}-${shortHash(group)}`;
}

/**
 * `<type>.delay`: where a publish with `delayMs` waits until the type's delay mover
 * (delay-mover.ts) moves it to `<type>`. The suffix is reserved: a type named `<type>.delay`
 * would share the topic. Over-long names end in a hash instead.
 */
export function delayTopic(type: string): string {
  const plain = `${type}.delay`;
  if (plain.length <= MAX_TOPIC) return plain;
  return `${type.slice(0, MAX_TOPIC - 20)}.delay-${shortHash(type)}`;
}

/**
 * `<type>.p<band>`: the topic of priority band `band` (1 and up) when `priorityLevels` is on;
 * band 0 is the type's own topic, so turning priority on moves nothing already published. The
 * suffix is reserved then. Over-long names end in a hash instead, as for `delayTopic`.
 */
export function priorityTopic(type: string, band: number): string {
  const plain = `${type}.p${band}`;
  if (plain.length <= MAX_TOPIC) return plain;
  return `${type.slice(0, MAX_TOPIC - 20)}.p${band}-${shortHash(type)}`;
}

/** The band of priority 0..9 (none = 0) among `levels` bands: equal shares of the range. */
export function priorityBand(priority: number | undefined, levels: number): number {
  if (levels < 2 || !priority) return 0;
  return Math.min(levels - 1, Math.floor((priority * levels) / 10));
}

/** The topic a message of `type` with `priority` is written to (its band's). */
export function topicForPriority(type: string, priority: number | undefined, levels: number): string {
  const band = priorityBand(priority, levels);
  return band === 0 ? type : priorityTopic(type, band);
}

/** The band topics (1 and up) of `type`: none when priority is off. */
export function bandTopics(type: string, levels: number): string[] {
  const topics: string[] = [];
  for (let band = 1; band < levels; band++) topics.push(priorityTopic(type, band));
  return topics;
}

/**
 * The consumer group (after `groupPrefix`) that moves a type's due delayed messages: one group
 * per type, shared by every manager consuming the type, so each delayed record is moved by one
 * member only, and consumers of one type starting or stopping never rebalance another's mover.
 * Under the reserved `plugmq.` prefix, like the dead-letter group; inspect() leaves it out.
 */
export const DELAY_MOVER_GROUP = 'plugmq.delay-mover.';

export function delayMoverGroup(type: string): string {
  return DELAY_MOVER_GROUP + type;
}

/** Creates topics once per process through the admin client (the broker's auto-create is off). */
export class TopicRegistry {
  private readonly known = new Map<string, Promise<void>>();

  constructor(
    private readonly client: KafkaClient,
    private readonly partitions: number,
    private readonly replicationFactor: number,
  ) {}

  ensure(topics: readonly string[], partitions = this.partitions): Promise<void> {
    const missing = topics.filter((topic) => !this.known.has(topic));
    if (missing.length > 0) {
      const creating = this.client.createTopics(
        missing.map((topic) => ({ topic, partitions, replicationFactor: this.replicationFactor })),
      );
      for (const topic of missing) {
        const entry = creating.catch((error: unknown) => {
          // Forget failures so the next use tries again (e.g. after the broker came back).
          if (this.known.get(topic) === entry) this.known.delete(topic);
          throw error;
        });
        entry.catch(() => {});
        this.known.set(topic, entry);
      }
    }
    const first = topics[0];
    if (topics.length === 1 && first !== undefined) return this.known.get(first) ?? Promise.resolve();
    return Promise.all(topics.map((topic) => this.known.get(topic))).then(() => undefined);
  }

  /** True when `ensure` already succeeded (or is under way) for `topic`. */
  has(topic: string): boolean {
    return this.known.has(topic);
  }
}
