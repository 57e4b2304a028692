import { randomInt, randomUUID } from 'node:crypto';
import {
  describeError,
  type Envelope,
  type Logger,
  type OutgoingEnvelope,
  PlugmqError,
  type ReplyChannel,
  type ReplyTransport,
  type TransportPublishContext,
} from '@plugmq/core/driver';
import type { GroupMember, KafkaClient } from './connection.js';
import type { KafkaConfig } from './options.js';
import type { Publisher } from './publisher.js';
import { REPLY_TOPIC, type TopicRegistry } from './topology.js';
import { envelopeToRecord, recordToEnvelope } from './wire.js';

/**
 * Replies travel on one shared topic, `plugmq.replies`, instead of a topic per manager. A reply
 * address is `plugmq.replies:<partition>`: the responder writes the reply to that partition.
 * Each manager reads its partition through a consumer group of its own
 * (`<groupPrefix>reply.<uuid>`, one member, other partitions paused). No other process ever
 * joins that group, so other managers starting or stopping never rebalance it, and replies
 * wait in the log while this manager's own member re-joins (e.g. after a broker restart).
 * Managers that share a partition skip each other's replies by correlation id.
 */
export class KafkaReplies implements ReplyTransport {
  private readonly channels = new Set<GroupMember>();

  constructor(
    private readonly client: KafkaClient,
    private readonly topics: TopicRegistry,
    private readonly publisher: Publisher,
    private readonly config: KafkaConfig,
    private readonly logger: Logger,
  ) {}

  async openReplyChannel(onReply: (envelope: Envelope) => void): Promise<ReplyChannel> {
    const client = this.client;
    const config = this.config;
    await this.topics.ensure([REPLY_TOPIC], config.replyPartitions);
    const ends = await client.endOffsets(REPLY_TOPIC);
    const partition = ends[randomInt(ends.length)]?.partition ?? 0;
    const groupId = `${config.groupPrefix}reply.${randomUUID()}`;
    // Start at the current end: only replies to requests sent from now on matter.
    const start = ends.find((entry) => entry.partition === partition)?.offset ?? 0;
    const member = client.member({
      groupId,
      sessionTimeoutMs: config.sessionTimeoutMs,
      rebalanceTimeoutMs: config.rebalanceTimeoutMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      maxWaitTimeMs: Math.min(config.maxWaitTimeMs, 50),
      partitionsConcurrently: 1,
    });
    await member.subscribe([REPLY_TOPIC], false);
    let joined!: () => void;
    const ready = new Promise<void>((resolve) => {
      joined = resolve;
    });
    let started = false;
    const others = ends.map((entry) => entry.partition).filter((p) => p !== partition);
    await member.run({
      onJoin: () => {
        if (others.length > 0) member.pause([{ topic: REPLY_TOPIC, partitions: others }]);
        if (!started) {
          started = true;
          member.seek({ topic: REPLY_TOPIC, partition, offset: start });
          // Also commit it, so a member that re-joins after a broker restart resumes here rather
          // than at the then-latest offset (replies written meanwhile would be skipped). Not from
          // inside the join event itself: kafkajs drops commits made there.
          setImmediate(() => {
            member
              .commit([{ topic: REPLY_TOPIC, partition, offset: start }])
              .catch(() => {})
              .finally(joined);
          });
          return;
        }
        joined();
      },
      onBatch: async (batch) => {
        let last = -1;
        for (const record of batch.records) {
          last = record.offset;
          batch.markFetched(record.offset);
          if (batch.partition !== partition) continue;
          try {
            onReply(recordToEnvelope(record, REPLY_TOPIC, REPLY_TOPIC, batch.partition));
          } catch (error) {
            this.logger.warn({ err: describeError(error) }, 'plugmq: a kafka reply could not be handled');
          }
        }
        if (last >= 0) {
          await member
            .commit([{ topic: REPLY_TOPIC, partition: batch.partition, offset: last + 1 }])
            .catch(() => {});
        }
      },
      onCrash: (error, restarting) => {
        this.logger.warn({ err: describeError(error), restarting }, 'plugmq: kafka reply consumer crashed');
      },
    });
    await ready;
    this.channels.add(member);
    return {
      address: `${REPLY_TOPIC}:${partition}`,
      close: async () => {
        if (!this.channels.delete(member)) return;
        await member.disconnect().catch(() => {});
        // The group is private to this manager; remove it instead of waiting for it to expire.
        await client.deleteGroup(groupId).catch(() => {});
      },
    };
  }

  async sendReply(
    address: string,
    envelope: OutgoingEnvelope,
    context: TransportPublishContext,
  ): Promise<void> {
    const match = /^(.+):(\d+)$/.exec(address);
    if (!match) throw new PlugmqError('PUBLISH_FAILED', `not a kafka reply address: ${address}`);
    const topic = match[1]!;
    await this.topics.ensure([topic], this.config.replyPartitions);
    await this.publisher.publish([envelopeToRecord(envelope, topic, undefined, Number(match[2]))], context);
  }
}
