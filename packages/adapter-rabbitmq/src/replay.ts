import { createHash, randomUUID } from 'node:crypto';
import { type Envelope, type Logger, PlugmqError } from '@plugmq/core/driver';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { ConnectionManager } from './connection.js';
import { pause } from './deadline.js';
import { PARTITION_HEADER, partitionQueueName, partitionsOf } from './partitions.js';
import { groupQueueName, type Topology } from './topology.js';
import { envelopeFromMessage } from './wire.js';

/**
 * With `retentionMs`, each type has a log: a stream queue `<ex>.log.<type>` bound to the main
 * exchange by type, so it holds every message of the type published in the last `retentionMs`
 * whether or not a group consumes it. A delayed message is written to the log by its publisher,
 * beside its wait queue, with the time it falls due (`plugmq-due-at`): the log is never a target
 * of a wait queue's dead-lettering, because RabbitMQ 3.10's at-least-once dead-letter worker can
 * stall a whole wait queue on a stream target after a broker restart (docs/GUARANTEES.md).
 * A group that is new to a type and starts from 'earliest' gets a copy of the log up to the
 * moment its own queue was bound:
 *
 * 1. `plan` (before the group's queue exists): the group is new to the type when its queue does
 *    not exist. A durable `<group queue>.replay` queue records the replay (one message: a marker
 *    id), so a process that dies mid-replay resumes it at its next start.
 * 2. The subscription declares and binds the group's queue: from then on the queue gets every
 *    message itself.
 * 3. `run`: the marker is appended to the log; everything before it in the log was routed before
 *    the marker was written, so the log is copied into the group's queue from its first entry up
 *    to the marker (publisher confirms), and the `.replay` queue is deleted. A message routed
 *    between the binding and the marker is in both: delivered twice, as at-least-once allows.
 *    A delayed message not yet due when the marker was written is left out: it reaches the
 *    group's queue, bound by then, through its wait queue when due.
 */
export const MARKER_HEADER = 'plugmq-replay-marker';
/** On a delayed message's log copy: when it falls due (ms since the epoch, the publisher's clock). */
export const DUE_HEADER = 'plugmq-due-at';
/** Stream segments this size (not RabbitMQ's 500 MB default), so retention trims in small steps. */
const SEGMENT_BYTES = 8_000_000;
/** Log entries read ahead and copied per confirm round trip. */
const COPY_BATCH = 250;
const LOG_REFRESH_MS = 60_000;

export function logQueueName(topology: Topology, type: string): string {
  const name = `${topology.exchange}.log.${type}`;
  if (name.length <= 255) return name;
  const digest = createHash('sha256').update(type).digest('hex').slice(0, 32);
  return `${topology.exchange}.log.~${digest}`;
}

export function logQueueArguments(retentionMs: number): Record<string, unknown> {
  return {
    'x-queue-type': 'stream',
    'x-max-age': `${Math.max(1, Math.ceil(retentionMs / 1000))}s`,
    'x-stream-max-segment-size-bytes': SEGMENT_BYTES,
  };
}

export async function declareLog(
  channel: Channel,
  topology: Topology,
  type: string,
  retentionMs: number,
): Promise<string> {
  const queue = logQueueName(topology, type);
  await channel.assertQueue(queue, { durable: true, arguments: logQueueArguments(retentionMs) });
  await channel.bindQueue(queue, topology.exchange, type);
  // Logs declared before delayed messages were logged at publish time were bound here too.
  await channel.unbindQueue(queue, topology.delayedExchange, type);
  return queue;
}

/** One replay to run for a (group, type) once the group's queue is bound. */
export interface ReplayStep {
  readonly group: string;
  readonly type: string;
  /** The group's queue (partition 0's where the group is partitioned). */
  readonly queue: string;
  readonly marker: string;
}

/** Copies envelopes into a queue (default exchange), resolving once the broker confirmed them. */
export type CopyFn = (envelopes: readonly Envelope[], queue: string, signal: AbortSignal) => Promise<void>;

export class LogReplay {
  /** Log queue → when this connection last declared it. */
  private readonly declared = new Map<string, number>();
  /** Log queue → its declaration in flight. */
  private readonly declaring = new Map<string, Promise<void>>();

  constructor(
    private readonly connections: ConnectionManager,
    private readonly topology: Topology,
    private readonly retentionMs: number,
    /** The groups' partitions (0: one queue per group): a copy goes to its message's partition. */
    private readonly partitions: number,
    private readonly copy: CopyFn,
    private readonly logger: Logger,
  ) {}

  /** A new connection declares again (a deleted log comes back). */
  forget(): void {
    this.declared.clear();
  }

  /**
   * Declares the logs of `types` not declared lately; undefined when there is nothing to do.
   * Concurrent publishes of a new type share one declaration: RabbitMQ 3.10 answers concurrent
   * declarations of one new stream queue with a connection error.
   */
  ensure(types: readonly string[], signal: AbortSignal): Promise<void> | undefined {
    const now = Date.now();
    const waits: Promise<void>[] = [];
    for (const type of new Set(types)) {
      const name = logQueueName(this.topology, type);
      const at = this.declared.get(name);
      if (at !== undefined && now - at <= LOG_REFRESH_MS) continue;
      let declaring = this.declaring.get(name);
      if (!declaring) {
        declaring = this.declare(type, signal).finally(() => this.declaring.delete(name));
        this.declaring.set(name, declaring);
      }
      waits.push(declaring);
    }
    return waits.length === 0 ? undefined : Promise.all(waits).then(() => undefined);
  }

  private async declare(type: string, signal: AbortSignal): Promise<void> {
    await this.connections.waitUp(signal);
    const name = await this.connections.withChannel((channel) =>
      declareLog(channel, this.topology, type, this.retentionMs),
    );
    this.declared.set(name, Date.now());
  }

  /** Step 1, before the subscription declares its queues. */
  async plan(group: string, types: readonly string[], signal: AbortSignal): Promise<ReplayStep[]> {
    await this.ensure(types, signal);
    const steps: ReplayStep[] = [];
    for (const type of types) {
      const queue = groupQueueName(this.topology, group, type);
      const pending = `${queue}.replay`;
      if (!(await this.exists(queue))) {
        const marker = randomUUID();
        await this.connections.withChannel(async (channel) => {
          await channel.deleteQueue(pending);
          await channel.assertQueue(pending, { durable: true });
          const confirm = await this.confirmChannel();
          try {
            confirm.sendToQueue(pending, Buffer.from(marker), { persistent: true });
            await confirm.waitForConfirms();
          } finally {
            await confirm.close().catch(() => {});
          }
        });
        steps.push({ group, type, queue, marker });
      } else if (await this.exists(pending)) {
        const marker = await this.connections.withChannel(async (channel) => {
          const message = await channel.get(pending, { noAck: false });
          if (message === false) return undefined;
          channel.nack(message, false, true);
          return message.content.toString('utf8');
        });
        if (marker) steps.push({ group, type, queue, marker });
      }
    }
    return steps;
  }

  /** Step 3, once the group's queue is bound. */
  async run(step: ReplayStep, signal: AbortSignal): Promise<void> {
    const log = logQueueName(this.topology, step.type);
    const markedAt = Date.now();
    const confirm = await this.confirmChannel();
    try {
      confirm.sendToQueue(log, Buffer.alloc(0), {
        persistent: true,
        headers: { [MARKER_HEADER]: step.marker },
      });
      await confirm.waitForConfirms();
    } finally {
      await confirm.close().catch(() => {});
    }
    const copied = await this.copyUntil(log, step, markedAt, signal);
    await this.connections.withChannel((channel) => channel.deleteQueue(`${step.queue}.replay`));
    this.logger.debug(
      { type: step.type, queue: step.queue, copied },
      'rabbitmq: replayed the log into a new group',
    );
  }

  /**
   * Reads the log from its first entry, copying each message into the queue, until the marker;
   * delayed messages due after `markedAt` are left to their wait queue.
   */
  private async copyUntil(
    log: string,
    step: ReplayStep,
    markedAt: number,
    signal: AbortSignal,
  ): Promise<number> {
    const connection = await this.connections.waitUp(signal);
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    let copied = 0;
    let batch: ConsumeMessage[] = [];
    let done = false;
    let failure: unknown;
    let flushing: Promise<void> = Promise.resolve();
    const flush = () => {
      const taken = batch;
      batch = [];
      flushing = flushing.then(async () => {
        if (taken.length === 0 || failure !== undefined) return;
        const byQueue = new Map<string, Envelope[]>();
        for (const message of taken) {
          if (message.properties.headers?.[MARKER_HEADER] !== undefined) continue;
          if (Number(message.properties.headers?.[DUE_HEADER] ?? 0) > markedAt) continue;
          const queue = this.targetOf(message, step);
          const list = byQueue.get(queue) ?? [];
          if (list.push(envelopeFromMessage(message, step.type)) === 1) byQueue.set(queue, list);
          copied++;
        }
        await Promise.all([...byQueue].map(([queue, envelopes]) => this.copy(envelopes, queue, signal)));
        const last = taken[taken.length - 1];
        if (last) channel.ack(last, true);
      });
      flushing.catch((error: unknown) => {
        failure ??= error;
      });
    };
    try {
      await channel.prefetch(COPY_BATCH * 2);
      await channel.consume(
        log,
        (message) => {
          if (message === null || done) return;
          if (message.properties.headers?.[MARKER_HEADER] === step.marker) {
            done = true;
            flush();
            return;
          }
          batch.push(message);
          if (batch.length >= COPY_BATCH) flush();
        },
        { noAck: false, arguments: { 'x-stream-offset': 'first' } },
      );
      while (!done && failure === undefined) {
        if (signal.aborted)
          throw new PlugmqError('CONNECTION', `replaying ${log} into ${step.queue} was aborted`);
        await pause(50, signal).catch(() => {});
      }
      await flushing;
      if (failure !== undefined) throw failure;
      return copied;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /** The group's queue of the partition the publisher picked (its header), else partition 0's. */
  private targetOf(message: ConsumeMessage, step: ReplayStep): string {
    const count = partitionsOf(step.group, this.partitions);
    const partition = Number(message.properties.headers?.[PARTITION_HEADER]);
    if (count === 0 || !Number.isInteger(partition) || partition < 0 || partition >= count) return step.queue;
    return partitionQueueName(this.topology, step.group, step.type, partition);
  }

  private async exists(queue: string): Promise<boolean> {
    const connection = this.connections.current;
    if (!connection) throw new PlugmqError('CONNECTION', 'RabbitMQ connection is down; reconnecting');
    // A passive declare of a missing queue closes its channel (404): a throw-away one.
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    try {
      await channel.checkQueue(queue);
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return false;
      throw error;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  private async confirmChannel(): Promise<ConfirmChannel> {
    const connection = this.connections.current;
    if (!connection) throw new PlugmqError('CONNECTION', 'RabbitMQ connection is down; reconnecting');
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => {});
    return channel;
  }
}
