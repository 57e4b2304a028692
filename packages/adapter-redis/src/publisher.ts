import {
  describeError,
  type OutgoingEnvelope,
  OverdueWatch,
  OverdueWatched,
  PlugmqError,
  partitionOfKey,
  redactCredentials,
  type TransportPublishContext,
  WIRE,
} from '@plugmq/core/driver';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.js';
import {
  isShortfall,
  queueTransaction,
  ReplicaWaits,
  type Reply,
  transactionResult,
} from './replica-wait.js';
import { type LuaScript, Scripts, STORE_SCRIPTS } from './scripts.js';
import { type TypeKeys, typeKeys } from './topology.js';
import { againWhileTransient, isTransient } from './transient.js';
import { BODY_FIELD, envelopeToFields, type FieldValue, plainEntryId } from './wire.js';

/**
 * One publish waiting for Redis' reply: one promise for the caller, settled by the store or by
 * its deadline, which is attached only once the reply is overdue (cheap for the fast path).
 */
class PendingPublish extends OverdueWatched {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;
  /** False once settled: a cut command is not sent again after that. */
  open = true;
  /** The last time too few replicas acknowledged it (waitForReplicas): said when it expires. */
  shortfall: PlugmqError | undefined = undefined;

  constructor(context: TransportPublishContext) {
    super(context);
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** How one envelope is stored: by a script, or by XADD with these arguments. */
interface StoreCommand {
  readonly script: LuaScript | undefined;
  readonly args: FieldValue[];
}

/**
 * Stores envelopes: XADD to the type's stream (a Lua script for mandatory and delayed ones; a
 * priority of 1..9 goes to that level's stream through PUBLISH_LEVEL, see priority-levels.ts).
 * Single publishes go through ioredis' auto-pipelining, so concurrent publishes share one write
 * and one round trip; a batch is one MULTI per message type (all of a type's keys share one
 * cluster slot; across types a batch is stored per type, each all-or-nothing).
 *
 * Never resolves unstored: a publish resolves only on Redis' reply. While Redis is away the
 * command waits in ioredis' offline queue and is re-sent after the reconnect; its deadline
 * (core's publishTimeoutMs or the caller's signal) rejects it with PUBLISH_FAILED meanwhile. Such a
 * rejected publish may still be stored once Redis is back (at-least-once: a caller that retries
 * can produce a duplicate, never a loss). A Cluster failing over answers CLUSTERDOWN (and the
 * like, see transient.ts) for a few seconds; ioredis retries those for ~1.6 s only, so the
 * publish sends the command again itself until it is stored or its deadline passes.
 *
 * With `waitForReplicas` (durable publishes) every write is followed by a WAIT in the same
 * pipeline (see replica-wait.ts), and a publish resolves only once that many replicas have it.
 * When fewer acknowledged within `waitForReplicasTimeoutMs` the write is sent again (the master
 * keeps the earlier copy: a duplicate, never a loss) until enough replicas acknowledge or the
 * publish's deadline rejects it with PUBLISH_FAILED naming the shortfall.
 */
export class Publisher {
  /** Publishes waiting for Redis' reply; their deadlines attach once they are overdue. */
  private readonly pending = new OverdueWatch<PendingPublish>('publish to Redis', (pending, error) =>
    this.expired(pending, error),
  );
  private readonly keys = new Map<string, TypeKeys>();
  /** Set with waitForReplicas: writes go through it, on a connection of their own. */
  private readonly waits: ReplicaWaits | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly scripts: Scripts,
    private readonly prefix: string,
    private readonly maxLen: number | undefined,
    /** `partitions`: a keyed message goes to the stream of its key's partition (0: off). */
    private readonly partitions: number,
    private readonly onScheduled: (keys: TypeKeys, dueAt: number) => void,
    durable?: { client: RedisClient; replicas: number; timeoutMs: number },
  ) {
    client.on('close', () => this.pending.armAll());
    if (durable) {
      this.waits = new ReplicaWaits(durable.client, durable.replicas, durable.timeoutMs);
      durable.client.on('close', () => this.pending.armAll());
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }

  publish(envelopes: readonly OutgoingEnvelope[], context: TransportPublishContext): Promise<void> {
    if (this.partitions > 0) {
      const refused = envelopes.find(
        (envelope) => envelope.key !== undefined && (envelope.priority ?? 0) > 0,
      );
      if (refused) return Promise.reject(keyWithPriority(refused));
    }
    const pending = new PendingPublish(context);
    this.pending.add(pending);
    this.store(envelopes).then(
      () => this.settle(pending),
      (error: unknown) => {
        // A command cut by a dropped connection, or refused for now by a Cluster failing over
        // (CLUSTERDOWN, TRYAGAIN, …), is sent again (maybe stored twice, never lost) until the
        // publish resolves or its deadline rejects it.
        if (!isTransient(error) && !isShortfall(error)) return this.settle(pending, error);
        if (isShortfall(error)) pending.shortfall = error as PlugmqError;
        againWhileTransient(
          () =>
            this.store(envelopes).catch((again: unknown) => {
              if (isShortfall(again)) pending.shortfall = again as PlugmqError;
              throw again;
            }),
          () => pending.open,
          (again) => isTransient(again) || isShortfall(again),
        ).then(
          () => this.settle(pending),
          (again: unknown) => this.settle(pending, again),
        );
      },
    );
    return pending.promise;
  }

  private store(envelopes: readonly OutgoingEnvelope[]): Promise<unknown> {
    if (this.waits) return this.storeDurably(envelopes);
    return envelopes.length === 1
      ? this.storeOne(envelopes[0] as OutgoingEnvelope)
      : this.storeBatch(envelopes);
  }

  private settle(pending: PendingPublish, error?: unknown): void {
    if (!this.pending.settle(pending)) return;
    pending.open = false;
    if (error === undefined) pending.resolve();
    else pending.reject(asPublishError(error));
  }

  private expired(pending: PendingPublish, error: PlugmqError): void {
    pending.open = false;
    const shortfall = pending.shortfall;
    pending.reject(
      shortfall
        ? new PlugmqError(error.code, `${error.message}; last try: ${shortfall.message}`, { cause: error })
        : error,
    );
  }

  close(): void {
    this.pending.close();
  }

  /** Keys per type, cached per publisher (no string building per publish). */
  private keysOf(type: string): TypeKeys {
    let keys = this.keys.get(type);
    if (!keys) {
      keys = typeKeys(this.prefix, type);
      if (this.keys.size >= 10_000) this.keys.clear();
      this.keys.set(type, keys);
    }
    return keys;
  }

  /**
   * The keys of the envelope's own stream: its key's partition (with `partitions`), else its
   * priority level (level 0: the type's own).
   */
  private levelKeysOf(keys: TypeKeys, envelope: OutgoingEnvelope): TypeKeys {
    if (this.partitions > 0 && envelope.key !== undefined) {
      return typeKeys(this.prefix, keys.type, 0, partitionOfKey(envelope.key, this.partitions));
    }
    const level = envelope.priority ?? 0;
    return level > 0 ? typeKeys(this.prefix, keys.type, level) : keys;
  }

  private storeOne(envelope: OutgoingEnvelope): Promise<unknown> {
    const keys = this.keysOf(envelope.type);
    const id = plainEntryId(envelope);
    // The common publish (JSON text, no key, headers or options) goes out without an argument
    // array of our own: ioredis builds one from the call's arguments anyway.
    if (id !== undefined && this.maxLen === undefined) {
      return this.client.xadd(keys.stream, '*', WIRE.id, id, BODY_FIELD, envelope.text as string);
    }
    const { script, args } = this.command(keys, envelope);
    const stored = script
      ? this.scripts.run(script, args)
      : (this.client.xadd as (...all: FieldValue[]) => Promise<unknown>)(...args);
    if (!envelope.mandatory && !envelope.delayMs) return stored;
    return stored.then((result) => this.check(keys, envelope, result));
  }

  private async storeBatch(envelopes: readonly OutgoingEnvelope[]): Promise<void> {
    const byType = new Map<string, OutgoingEnvelope[]>();
    for (const envelope of envelopes) {
      const list = byType.get(envelope.type);
      if (list) list.push(envelope);
      else byType.set(envelope.type, [envelope]);
    }
    await Promise.all([...byType.values()].map((list) => this.storeTransaction(list)));
  }

  private async storeTransaction(envelopes: OutgoingEnvelope[]): Promise<void> {
    const keys = this.keysOf((envelopes[0] as OutgoingEnvelope).type);
    const multi = this.client.multi();
    for (const envelope of envelopes) {
      const { script, args } = this.command(keys, envelope);
      if (script) Scripts.queue(multi, script, args);
      else (multi.xadd as (...all: FieldValue[]) => ChainableCommander)(...args);
    }
    const results = await multi.exec();
    if (!results) throw new PlugmqError('PUBLISH_FAILED', `the MULTI storing ${keys.type} was aborted`);
    results.forEach(([error, result], index) => {
      if (error) throw error;
      this.check(keys, envelopes[index] as OutgoingEnvelope, result);
    });
  }

  /** waitForReplicas: per type (one slot), the writes and a WAIT in one pipeline. */
  private async storeDurably(envelopes: readonly OutgoingEnvelope[]): Promise<void> {
    const waits = this.waits as ReplicaWaits;
    const byType = new Map<string, OutgoingEnvelope[]>();
    for (const envelope of envelopes) {
      const list = byType.get(envelope.type);
      if (list) list.push(envelope);
      else byType.set(envelope.type, [envelope]);
    }
    await Promise.all(
      [...byType.values()].map(async (list) => {
        const keys = this.keysOf((list[0] as OutgoingEnvelope).type);
        const queue = (pipeline: ChainableCommander, envelope: OutgoingEnvelope) => {
          const { script, args } = this.command(keys, envelope);
          if (script) Scripts.queue(pipeline, script, args);
          else (pipeline.xadd as (...all: FieldValue[]) => ChainableCommander)(...args);
        };
        if (list.length === 1) {
          const envelope = list[0] as OutgoingEnvelope;
          const [[error, result] = [null, null]] = await waits.run(keys.stream, (p) => queue(p, envelope));
          if (error) throw error;
          this.check(keys, envelope, result);
          return;
        }
        const replies: Reply[] = await waits.run(keys.stream, (pipeline) =>
          queueTransaction(pipeline, () => {
            for (const envelope of list) queue(pipeline, envelope);
          }),
        );
        transactionResult(replies).forEach((result, index) => {
          if (result instanceof Error) throw result;
          this.check(keys, list[index] as OutgoingEnvelope, result);
        });
      }),
    );
  }

  private command(keys: TypeKeys, envelope: OutgoingEnvelope): StoreCommand {
    const partitioned = this.partitions > 0 && envelope.key !== undefined;
    if (partitioned || (envelope.priority !== undefined && envelope.priority > 0)) {
      // A level (or partition) stream gets the type's groups before its entry (see PUBLISH_LEVEL):
      // a group that exists on the type's stream never misses a keyed message because its
      // subscriptions have not created it on the partition yet. A delayed one waits in the
      // level's (partition's) own delay set, so the mover returns it to its stream.
      const level = this.levelKeysOf(keys, envelope);
      const delayMs = envelope.delayMs !== undefined && envelope.delayMs > 0 ? envelope.delayMs : 0;
      const args = envelopeToFields(
        envelope,
        keys.stream,
        level.stream,
        keys.levels,
        level.delay.schedule,
        level.delay.data,
        String(level.level),
        envelope.mandatory ? '1' : '0',
        String(this.maxLen ?? 0),
        String(delayMs),
      );
      return { script: STORE_SCRIPTS.publishLevel, args };
    }
    if (envelope.delayMs !== undefined && envelope.delayMs > 0) {
      // A delayed message waits in the type's delay set until due, then moves into the stream.
      // `mandatory` is not checked for it (groups may appear before it is due; see README).
      const args = envelopeToFields(envelope, keys.delay.schedule, keys.delay.data, String(envelope.delayMs));
      return { script: STORE_SCRIPTS.schedule, args };
    }
    if (envelope.mandatory) {
      const args = envelopeToFields(envelope, keys.stream, String(this.maxLen ?? 0));
      return { script: STORE_SCRIPTS.publishMandatory, args };
    }
    const args =
      this.maxLen === undefined
        ? envelopeToFields(envelope, keys.stream, '*')
        : envelopeToFields(envelope, keys.stream, 'MAXLEN', '~', String(this.maxLen), '*');
    return { script: undefined, args };
  }

  private check(keys: TypeKeys, envelope: OutgoingEnvelope, result: unknown): void {
    if (envelope.delayMs !== undefined && envelope.delayMs > 0) {
      this.onScheduled(this.levelKeysOf(keys, envelope), Number(result));
      return;
    }
    if (envelope.mandatory && (result === null || result === undefined)) {
      throw new PlugmqError(
        'PUBLISH_FAILED',
        `mandatory publish to ${envelope.type}: no consumer group exists for this type yet (nothing was stored)`,
      );
    }
  }
}

/**
 * With partitions a key's order holds because all its messages share one stream, read in order by
 * one subscription; a priority puts a message on a level stream that is read before the others,
 * so it would overtake earlier messages of its key.
 */
function keyWithPriority(envelope: OutgoingEnvelope): PlugmqError {
  return new PlugmqError(
    'UNSUPPORTED',
    `publish to ${envelope.type}: key and priority together are not supported with partitions (the key's order holds within its partition stream; a priority level is a stream of its own, read first, so the message would overtake earlier ones of its key). Publish it without priority, or without key`,
  );
}

function asPublishError(error: unknown): PlugmqError {
  if (error instanceof PlugmqError) return error;
  return new PlugmqError(
    'PUBLISH_FAILED',
    `Redis refused the publish: ${redactCredentials(describeError(error))}`,
    {
      cause: error,
    },
  );
}
