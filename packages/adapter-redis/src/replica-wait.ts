import { PlugmqError } from '@plugmq/core/driver';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.js';

/** One command's reply in a pipeline: `[error, null]` or `[null, value]`. */
export type Reply = [Error | null, unknown];

/**
 * Fewer replicas than `waitForReplicas` acknowledged a write within `waitForReplicasTimeoutMs`:
 * the master has it, but a failover now could lose it. The publisher sends it again (see
 * publisher.ts) while the publish's deadline allows.
 */
export class ReplicaShortfall extends PlugmqError {
  /** Marks it: `instanceof` cannot, PlugmqError's own hasInstance answers true for every PlugmqError. */
  readonly replicaShortfall = true;

  constructor(acked: number, wanted: number, timeoutMs: number) {
    super(
      'PUBLISH_FAILED',
      `Redis stored the message, but only ${acked} of the ${wanted} replica(s) waitForReplicas asks ` +
        `for acknowledged it within ${timeoutMs} ms (WAIT); it may still be delivered, or be lost ` +
        'if the master fails before its replicas have it',
    );
  }
}

export function isShortfall(error: unknown): boolean {
  return (error as Partial<ReplicaShortfall> | undefined)?.replicaShortfall === true;
}

interface Entry {
  readonly first: number;
  readonly count: number;
  readonly resolve: (replies: Reply[]) => void;
  readonly reject: (error: unknown) => void;
}

interface Batch {
  readonly pipeline: ChainableCommander;
  readonly entries: Entry[];
}

/**
 * Writes followed by `WAIT numreplicas timeout`, for `waitForReplicas`. The writes one tick
 * makes to one slot (one message type) share one pipeline and one WAIT, which covers every
 * write the connection made before it. Write and WAIT travel in one pipeline on purpose: should
 * the connection drop between them, ioredis aborts both and the publish is sent again, whereas a
 * WAIT alone on a new connection would count replicas for a write it never made and say yes.
 * On a Cluster the pipeline goes to the master of its keys' slot, so WAIT asks the node that
 * took the write.
 */
export class ReplicaWaits {
  private readonly open = new Map<string, Batch>();

  constructor(
    private readonly client: RedisClient,
    private readonly replicas: number,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Queues what `queue` adds to this tick's pipeline for `slotKey` (keys of one slot only);
   * resolves with those commands' replies once enough replicas acknowledged, rejects with a
   * ReplicaShortfall when too few did, or with the error that cut the pipeline.
   */
  run(slotKey: string, queue: (pipeline: ChainableCommander) => void): Promise<Reply[]> {
    let batch = this.open.get(slotKey);
    if (!batch) {
      const created: Batch = { pipeline: this.client.pipeline(), entries: [] };
      this.open.set(slotKey, created);
      process.nextTick(() => this.flush(slotKey, created));
      batch = created;
    }
    const { pipeline, entries } = batch;
    const first = pipeline.length;
    queue(pipeline);
    return new Promise<Reply[]>((resolve, reject) => {
      entries.push({ first, count: pipeline.length - first, resolve, reject });
    });
  }

  private async flush(slotKey: string, batch: Batch): Promise<void> {
    if (this.open.get(slotKey) === batch) this.open.delete(slotKey);
    batch.pipeline.wait(this.replicas, this.timeoutMs);
    let results: Reply[];
    try {
      results = ((await batch.pipeline.exec()) ?? []) as Reply[];
    } catch (error) {
      for (const entry of batch.entries) entry.reject(error);
      return;
    }
    this.followRedirections(results);
    const [waitError, acked] = results[results.length - 1] ?? [new Error('WAIT got no reply'), 0];
    const failure =
      asDemoted(waitError) ??
      (Number(acked) < this.replicas
        ? new ReplicaShortfall(Number(acked), this.replicas, this.timeoutMs)
        : undefined);
    for (const entry of batch.entries) {
      const replies = results.slice(entry.first, entry.first + entry.count);
      // A write Redis refused (mandatory without a group, a bad argument) fails by itself; a WAIT
      // that failed or fell short fails every write it covered.
      const own = replies.find(([error]) => error)?.[0];
      if (own || !failure) entry.resolve(replies);
      else entry.reject(failure);
    }
  }

  /**
   * ioredis follows a pipeline's MOVED only when every command in it got the same one, and WAIT
   * (no key) is answered by any node: after a failover the pipeline would go on reaching the old
   * owner's stand-in forever, its writes refused with MOVED. Learn the new owner, as ioredis does
   * for a single command; the publisher then sends the write again.
   */
  private followRedirections(results: readonly Reply[]): void {
    if (!('refreshSlotsCache' in this.client)) return;
    if (results.some(([error]) => error && /^(?:MOVED|ASK) /.test(error.message))) {
      this.client.refreshSlotsCache();
    }
  }
}

/**
 * A node demoted to replica under the connection refuses WAIT with a plain ERR; say READONLY,
 * as its writes do, so that the publish is sent again (to the new master, after the reconnect).
 */
function asDemoted(error: Error | null): Error | null {
  if (!error || !/WAIT cannot be used with replica/i.test(error.message)) return error;
  return new Error(`READONLY the node answering is a replica now (${error.message.slice(0, 80)})`);
}

/**
 * Queues one MULTI … EXEC inside a pipeline (ioredis' multi() would end the pipeline with its
 * EXEC); `commands` adds the transaction's commands. The replies are read by transactionResult.
 */
export function queueTransaction(pipeline: ChainableCommander, commands: () => void): void {
  pipeline.call('MULTI');
  commands();
  pipeline.call('EXEC');
}

/**
 * The EXEC reply of a transaction queued by queueTransaction: the commands' results (an Error in
 * place of one that failed), or throws as ioredis' multi() would (EXECABORT with previousErrors).
 */
export function transactionResult(replies: Reply[]): unknown[] {
  const [execError, exec] = replies[replies.length - 1] ?? [new Error('EXEC got no reply'), null];
  if (execError) {
    const queued = replies.slice(1, -1).flatMap(([error]) => (error ? [error] : []));
    Object.assign(execError, { previousErrors: queued });
    throw execError;
  }
  if (!Array.isArray(exec)) throw new Error('the MULTI was aborted');
  return exec;
}
