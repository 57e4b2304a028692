import { randomUUID } from 'node:crypto';
import {
  describeError,
  type Envelope,
  type Logger,
  type OutgoingEnvelope,
  type ReplyChannel,
  redactCredentials,
  type TransportPublishContext,
  waitForAbort,
} from '@plugmq/core/driver';
import { type ClientFactory, type RedisClient, within } from './connection.js';
import { replyKey } from './topology.js';
import { FailureStreak } from './transient.js';
import { envelopeFromFields, envelopeToFields, fieldsToFrame, frameToFields } from './wire.js';

/** Seconds a reply reader blocks in BRPOP; only bounds how often an idle reader loops. */
const BLOCK_SECONDS = 2;

/**
 * Request/reply fast path: each manager reads its replies from a list of its own (BRPOP on a
 * dedicated connection); a responder LPUSHes the reply there with a TTL, so replies to a requester
 * that went away expire instead of piling up. No stream, group or trimming per manager.
 */
export class ListReplyChannel implements ReplyChannel {
  readonly address: string;
  private readonly connection: RedisClient;
  private closed = false;
  private loop: Promise<void> | undefined;
  private readonly failures: FailureStreak;

  constructor(
    prefix: string,
    factory: ClientFactory,
    private readonly client: RedisClient,
    private readonly logger: Logger,
    private readonly onReply: (envelope: Envelope) => void,
  ) {
    this.address = replyKey(prefix, randomUUID());
    this.connection = factory.create('replies');
    this.failures = new FailureStreak(factory.failsOver);
  }

  start(): void {
    this.connection.connect().catch(() => {});
    this.loop = this.run();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connection.disconnect();
    // A BRPOP queued while ioredis was reconnecting never fails after disconnect(): bounded wait.
    await within(this.loop as Promise<void>, 1_000, 'the reply reader to stop').catch(() => {});
    // With Redis away the list simply expires (replyTtlMs) instead.
    await within(this.client.del(this.address), 1_000, 'deleting the reply list').catch(() => {});
  }

  private async run(): Promise<void> {
    const failures = this.failures;
    while (!this.closed) {
      try {
        const popped = await this.connection.brpopBuffer(this.address, BLOCK_SECONDS);
        failures.succeeded();
        if (!popped) continue;
        const frame = popped[1];
        const envelope = envelopeFromFields(frameToFields(frame), { type: 'plugmq.reply', id: randomUUID() });
        this.onReply(envelope);
      } catch (error) {
        if (this.closed) return;
        if (failures.failed(error)) {
          this.logger.warn(
            { err: redactCredentials(describeError(error)) },
            'plugmq: reading replies failed; retrying',
          );
        }
        await failures.pause();
      }
    }
  }
}

/** Stores a reply in the requester's list (one MULTI: LPUSH + PEXPIRE), bounded by the deadline. */
export async function sendReply(
  client: RedisClient,
  address: string,
  envelope: OutgoingEnvelope,
  context: TransportPublishContext,
  ttlMs: number,
): Promise<void> {
  const frame = fieldsToFrame(envelopeToFields(envelope));
  const stored = client.multi().lpush(address, frame).pexpire(address, ttlMs).exec();
  const deadline = waitForAbort(context.signal, 'reply');
  try {
    const results = await Promise.race([stored, deadline.promise]);
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  } finally {
    deadline.dispose();
  }
}
