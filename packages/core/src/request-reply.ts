import { randomUUID } from 'node:crypto';
import type { CodecRegistry } from './codec.js';
import { describeError, PlugmqError } from './errors.js';
import type { Logger } from './logger.js';
import type { Envelope, OutgoingEnvelope, Transport } from './transport.js';
import type { Message, QueueManager, RequestOptions, RespondOptions, Subscription } from './types.js';
import { assertMessageType, validateTimeout } from './validation.js';

export const REPLY_HEADERS = {
  replyTo: 'x-plugmq-reply-to',
  correlationId: 'x-plugmq-correlation-id',
  error: 'x-plugmq-reply-error',
} as const;

export const DEFAULT_RESPONDER_GROUP = 'plugmq.responders';
const REPLY_GROUP = 'plugmq.reply';
const RESPONDER_CONCURRENCY = 16;

/** The responder's error, carried back to the requester. */
export class ResponderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResponderError';
  }
}

interface PendingRequest {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface RequestReplyDeps {
  readonly codecs: CodecRegistry;
  readonly logger: Logger;
  readonly defaultTimeoutMs: number;
  sendEnvelope(envelope: OutgoingEnvelope, signal: AbortSignal | undefined): Promise<void>;
  transport(): Transport;
}

/**
 * Request/reply over ordinary messages: the request carries a reply address and a correlation id;
 * replies come back on the transport's reply channel when it has one (e.g. RabbitMQ direct
 * reply-to), otherwise on a reply type private to this manager.
 */
export class RequestReply {
  private readonly pending = new Map<string, PendingRequest>();
  private replyAddress: Promise<{ address: string; close(): Promise<void> }> | undefined;

  constructor(
    private readonly manager: QueueManager,
    private readonly deps: RequestReplyDeps,
  ) {}

  async request<Req, Res>(type: string, body: Req, options: RequestOptions = {}): Promise<Res> {
    assertMessageType(type);
    validateTimeout(options.timeoutMs, 'options.timeoutMs');
    const timeoutMs = options.timeoutMs ?? this.deps.defaultTimeoutMs;
    const { address } = await this.openReplies();
    const correlationId = randomUUID();
    const reply = new Promise<Res>((resolve, reject) => {
      this.pending.set(correlationId, { resolve: resolve as (value: unknown) => void, reject });
    });
    // The reply (or its timeout) can settle before the publish resolves, while nothing awaits it
    // yet; the await below still sees the rejection, this only stops an "unhandled" report.
    reply.catch(() => {});
    const timer = setTimeout(() => {
      this.settle(
        correlationId,
        new PlugmqError('TIMEOUT', `no reply to ${type} within ${timeoutMs} ms (is a responder running?)`),
      );
    }, timeoutMs);
    const onAbort = () =>
      this.settle(
        correlationId,
        new PlugmqError('TIMEOUT', `request to ${type} aborted by its signal`, {
          cause: options.signal?.reason,
        }),
      );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.manager.publish(type, body, {
        id: correlationId,
        headers: { [REPLY_HEADERS.replyTo]: address, [REPLY_HEADERS.correlationId]: correlationId },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return await reply;
    } catch (error) {
      this.pending.delete(correlationId);
      throw error;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  respond<Req, Res>(
    type: string,
    handler: (message: Message<Req>) => Res | Promise<Res>,
    options: RespondOptions = {},
  ): Promise<Subscription> {
    if (typeof handler !== 'function') {
      throw new PlugmqError('INVALID_ARGUMENT', 'handler must be a function (got ' + typeof handler + ')');
    }
    return this.manager.consume<Req>(
      type,
      async (message) => {
        const replyTo = message.headers[REPLY_HEADERS.replyTo];
        const correlationId = message.headers[REPLY_HEADERS.correlationId] ?? message.id;
        let result: unknown;
        let failure: string | undefined;
        try {
          result = await handler(message);
        } catch (error) {
          if (!replyTo) throw error;
          failure = error instanceof Error ? error.message : String(error);
        }
        if (replyTo) await this.sendReply(replyTo, correlationId, result, failure);
      },
      {
        group: options.group ?? DEFAULT_RESPONDER_GROUP,
        concurrency: RESPONDER_CONCURRENCY,
        retry: { maxAttempts: 1 },
        deadLetter: false,
      },
    );
  }

  async close(): Promise<void> {
    for (const id of [...this.pending.keys()]) {
      this.settle(id, new PlugmqError('CLOSED', 'the queue manager closed before the reply arrived'));
    }
    const opened = this.replyAddress;
    this.replyAddress = undefined;
    if (opened) await (await opened.catch(() => undefined))?.close();
  }

  private async sendReply(
    address: string,
    correlationId: string,
    result: unknown,
    failure: string | undefined,
  ) {
    const { contentType, bytes } = this.deps.codecs.encode(result);
    const headers: Record<string, string> = { [REPLY_HEADERS.correlationId]: correlationId };
    if (failure !== undefined) headers[REPLY_HEADERS.error] = failure.slice(0, 1024);
    const envelope: OutgoingEnvelope = {
      id: randomUUID(),
      type: address,
      timestamp: Date.now(),
      headers,
      contentType,
      body: bytes,
      attempt: 1,
    };
    const replies = this.deps.transport().replies;
    if (replies) {
      const deadline = AbortSignal.timeout(this.deps.defaultTimeoutMs);
      await replies.sendReply(address, envelope, { signal: deadline });
    } else {
      await this.deps.sendEnvelope(envelope, undefined);
    }
  }

  private openReplies(): Promise<{ address: string; close(): Promise<void> }> {
    this.replyAddress ??= this.createReplyChannel();
    return this.replyAddress;
  }

  private async createReplyChannel(): Promise<{ address: string; close(): Promise<void> }> {
    const replies = this.deps.transport().replies;
    if (replies) return replies.openReplyChannel((envelope) => this.onReply(envelope));
    const address = `plugmq.reply.${randomUUID()}`;
    const subscription = await this.manager.consume(
      address,
      (message) => {
        this.onReplyMessage(message.headers, () => message.body);
      },
      { group: REPLY_GROUP, concurrency: 64, retry: { maxAttempts: 1 }, deadLetter: false },
    );
    return { address, close: () => subscription.close() };
  }

  private onReply(envelope: Envelope): void {
    this.onReplyMessage(envelope.headers, () => this.deps.codecs.decode(envelope.contentType, envelope.body));
  }

  private onReplyMessage(headers: Readonly<Record<string, string>>, body: () => unknown): void {
    const correlationId = headers[REPLY_HEADERS.correlationId];
    if (correlationId === undefined || !this.pending.has(correlationId)) return;
    const failure = headers[REPLY_HEADERS.error];
    if (failure !== undefined) {
      this.settle(correlationId, new ResponderError(failure));
      return;
    }
    try {
      this.settle(correlationId, undefined, body());
    } catch (error) {
      this.settle(correlationId, error);
      this.deps.logger.warn({ err: describeError(error) }, 'plugmq: a reply could not be decoded');
    }
  }

  private settle(correlationId: string, error: unknown, value?: unknown): void {
    const entry = this.pending.get(correlationId);
    if (!entry) return;
    this.pending.delete(correlationId);
    if (error === undefined) entry.resolve(value);
    else entry.reject(error);
  }
}
