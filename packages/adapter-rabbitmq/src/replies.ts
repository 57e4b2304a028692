import type { Envelope, Logger, ReplyChannel } from '@plugmq/core/driver';
import type { Channel, ChannelModel } from 'amqplib';
import type { ConnectionManager, ConnectionUser } from './connection.js';
import { envelopeFromMessage } from './wire.js';

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const PROBE_ATTEMPTS = 50;

/**
 * Request/reply over RabbitMQ's direct reply-to: replies go straight to this channel's consumer,
 * with no queue. The broker only reveals the channel's reply address (`amq.rabbitmq.reply-to.<…>`)
 * by rewriting `replyTo` on a message the channel publishes, so the address is learnt once per
 * connection by sending such a message to a private queue and reading it back. Requests carry it
 * in a header; responders publish replies to it through the default exchange. After a reconnect
 * the address changes: replies to requests sent before it are lost and those requests time out.
 * Replies are published without `mandatory`: RabbitMQ counts a direct reply-to delivery as routed
 * to no queue, so a mandatory reply is returned (basic.return) even though the requester got it.
 * A reply to a requester that is gone is dropped by the broker; that request already failed
 * with TIMEOUT or CLOSED on its side, and the responder's handler still counts as acked.
 */
export class DirectReplyChannel implements ReplyChannel, ConnectionUser {
  private channel: Channel | undefined;
  private currentAddress = '';
  private closed = false;

  constructor(
    private readonly connections: ConnectionManager,
    private readonly logger: Logger,
    private readonly onReply: (envelope: Envelope) => void,
  ) {}

  get address(): string {
    return this.currentAddress;
  }

  async start(signal: AbortSignal): Promise<void> {
    await this.connections.use(this);
    while (!this.channel) await this.connected(await this.connections.waitUp(signal));
  }

  async connected(connection: ChannelModel): Promise<void> {
    if (this.closed || this.channel) return;
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    await channel.consume(
      DIRECT_REPLY_TO,
      (message) => {
        if (message) this.onReply(envelopeFromMessage(message, 'reply'));
      },
      { noAck: true },
    );
    this.currentAddress = await probeAddress(channel);
    this.channel = channel;
  }

  disconnected(): void {
    this.channel = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connections.release(this);
    const channel = this.channel;
    this.channel = undefined;
    await channel
      ?.close()
      .catch((error: unknown) =>
        this.logger.debug({ err: String(error) }, 'plugmq: closing the reply channel failed'),
      );
  }
}

async function probeAddress(channel: Channel): Promise<string> {
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
  try {
    channel.publish('', queue, Buffer.alloc(0), { replyTo: DIRECT_REPLY_TO });
    for (let attempt = 0; attempt < PROBE_ATTEMPTS; attempt++) {
      const message = await channel.get(queue, { noAck: true });
      if (message && typeof message.properties.replyTo === 'string') return message.properties.replyTo;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('RabbitMQ did not reveal the direct reply-to address');
  } finally {
    await channel.deleteQueue(queue).catch(() => {});
  }
}
