import { describeError, type Logger, redactCredentials } from '@plugmq/core/driver';
import type kafkajs from 'kafkajs';
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import type {
  FetchedBatch,
  FetchedRecord,
  GroupMember,
  MemberHandlers,
  MemberOptions,
  TopicPartitionOffset,
} from './connection.js';
import { subscriptionAwareAssigner } from './kafkajs-assigner.js';
import { errorType, isMarkedRetriable, RETRY } from './kafkajs-errors.js';
import { retrying } from './retrying.js';

/**
 * A group member that survives the crashes kafkajs does not restart from by itself (e.g.
 * "group coordinator not found" while a broker restarts): it builds a new kafkajs consumer with
 * the same subscriptions and handlers and joins again, until `disconnect`.
 */
export class KafkajsMember implements GroupMember {
  private consumer: Consumer;
  private readonly subscriptions: { topics: string[]; fromBeginning: boolean }[] = [];
  private handlers: MemberHandlers | undefined;
  private stopped = false;
  /** Seeks asked of kafkajs so far: a batch is stale only if one came after it was handed out. */
  private seeks = 0;

  constructor(
    private readonly kafka: kafkajs.Kafka,
    private readonly options: MemberOptions,
    private readonly logger: Logger,
  ) {
    this.consumer = this.createConsumer();
  }

  private createConsumer(): Consumer {
    const { options } = this;
    return this.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      rebalanceTimeout: options.rebalanceTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      maxWaitTimeInMs: options.maxWaitTimeMs,
      partitionAssigners: [subscriptionAwareAssigner],
      retry: RETRY,
      allowAutoTopicCreation: false,
    });
  }

  async subscribe(topics: readonly string[], fromBeginning: boolean): Promise<void> {
    this.subscriptions.push({ topics: [...topics], fromBeginning });
    // On a cluster, a topic just created is known to its controller before every broker: the
    // broker that answers kafkajs' metadata request may not host it yet for a moment.
    await retrying(
      () => this.consumer.subscribe({ topics: [...topics], fromBeginning }),
      (error) => errorType(error) === 'UNKNOWN_TOPIC_OR_PARTITION' || isMarkedRetriable(error),
    );
  }

  async run(handlers: MemberHandlers): Promise<void> {
    this.handlers = handlers;
    await this.start(this.consumer);
  }

  private async start(consumer: Consumer): Promise<void> {
    const handlers = this.handlers!;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (consumer === this.consumer) handlers.onJoin(event.payload.memberAssignment);
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (consumer !== this.consumer) return;
      handlers.onCrash(event.payload.error, event.payload.restart);
      if (!event.payload.restart && !this.stopped) void this.revive();
    });
    await consumer.connect();
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConcurrently,
      eachBatch: (payload) => handlers.onBatch(this.toBatch(payload)),
    });
  }

  private async revive(): Promise<void> {
    for (let wait = 500; !this.stopped; wait = Math.min(wait * 2, 5_000)) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.stopped) return;
      const old = this.consumer;
      await old.disconnect().catch(() => {});
      const consumer = this.createConsumer();
      this.consumer = consumer;
      try {
        for (const { topics, fromBeginning } of this.subscriptions) {
          await consumer.subscribe({ topics, fromBeginning });
        }
        await this.start(consumer);
        this.logger.info({ groupId: this.options.groupId }, 'plugmq: kafka consumer recreated after a crash');
        return;
      } catch (error) {
        this.logger.warn(
          { groupId: this.options.groupId, err: redactCredentials(describeError(error)) },
          'plugmq: recreating the kafka consumer failed; trying again',
        );
      }
    }
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    await this.consumer.commitOffsets(
      offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset: String(offset) })),
    );
  }

  seek({ topic, partition, offset }: TopicPartitionOffset): void {
    this.seeks++;
    try {
      this.consumer.seek({ topic, partition, offset: String(offset) });
    } catch {
      // Not running (crashed, being recreated): it starts from the committed offsets anyway.
    }
  }

  pause(entries: readonly { topic: string; partitions?: readonly number[] }[]): void {
    try {
      this.consumer.pause(
        entries.map(({ topic, partitions }) =>
          partitions ? { topic, partitions: [...partitions] } : { topic },
        ),
      );
    } catch {
      // Not running: nothing is fetched anyway.
    }
  }

  async disconnect(): Promise<void> {
    this.stopped = true;
    await this.consumer.disconnect();
  }

  private toBatch(payload: EachBatchPayload): FetchedBatch {
    const { batch } = payload;
    // kafkajs answers isStale with a JSON.stringify and a Map lookup, and the subscription asks
    // after every wait for a handler slot. Only this member's seeks make a batch stale (kafkajs
    // never seeks by itself), so kafkajs is asked again only when one was made since.
    const seeksAtStart = this.seeks;
    let stale = payload.isStale();
    return {
      topic: batch.topic,
      partition: batch.partition,
      records: toRecords(batch.messages),
      markFetched: (offset: number) => payload.resolveOffset(String(offset)),
      heartbeat: () => payload.heartbeat(),
      isStale: () => {
        if (!stale && this.seeks !== seeksAtStart) stale = payload.isStale();
        return stale;
      },
      pause: () => payload.pause(),
    };
  }
}

const EMPTY = Buffer.alloc(0);

/** Each kafkajs message as a record when the loop over the batch reaches it (FetchedBatch.records). */
function* toRecords(messages: readonly KafkaMessage[]): Generator<FetchedRecord, void, undefined> {
  for (const message of messages) {
    yield {
      offset: Number(message.offset),
      key: message.key === null || message.key === undefined ? undefined : message.key.toString(),
      value: message.value ?? EMPTY,
      headers: headersToStrings(message.headers),
      timestamp: Number(message.timestamp),
    };
  }
}

export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  // for…in rather than Object.entries: no array of pairs per message (this runs for every record).
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}
