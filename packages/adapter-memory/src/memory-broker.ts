import {
  type DeliverFn,
  type Envelope,
  type OutgoingEnvelope,
  PlugmqError,
  type SubscribeRequest,
  type TransportHooks,
  type TransportPublishContext,
  type TransportSubscription,
} from '@plugmq/core/driver';
import { GroupQueue, MemoryConsumer, type RetryScheduler } from './group-queue.js';
import { Ring } from './ring.js';
import { TimerHeap } from './timer-heap.js';

export interface MemoryBrokerOptions {
  /** Messages one (type, group) buffers before publish waits. */
  readonly bufferSize: number;
  /** Messages kept per type for groups that start from 'earliest'. */
  readonly historySize: number;
}

interface TypeState {
  readonly groups: Map<string, GroupQueue>;
  /** `groups`' queues, in the same order: every publish walks them, and an array needs no iterator. */
  readonly queues: GroupQueue[];
  readonly history: Ring<Envelope>;
}

/**
 * The in-process broker: a registry of types, each with one bounded GroupQueue per group (fan-out
 * between groups, competing consumers inside one) and a bounded history. Managers created with
 * the same namespace share one broker, so they behave like processes sharing a real broker.
 */
export class MemoryBroker implements RetryScheduler {
  private readonly types = new Map<string, TypeState>();
  private readonly timers = new TimerHeap();

  constructor(readonly options: MemoryBrokerOptions) {}

  publish(
    envelopes: readonly OutgoingEnvelope[],
    context: TransportPublishContext,
    hooks: TransportHooks,
  ): Promise<void> | undefined {
    for (const envelope of envelopes) {
      if (envelope.mandatory && this.stateOf(envelope.type).groups.size === 0) {
        throw new PlugmqError(
          'PUBLISH_FAILED',
          `no group consumes ${envelope.type} yet (mandatory: true); start a consumer first`,
        );
      }
    }
    for (let i = 0; i < envelopes.length; i++) {
      const envelope = envelopes[i]!;
      if (envelope.delayMs) {
        this.scheduleDelayed(envelope, hooks);
      } else if (this.blockingQueue(envelope.type)) {
        return this.publishWhenRoom(envelopes, i, context, hooks);
      } else {
        this.route(envelope, hooks);
      }
    }
    return undefined;
  }

  private scheduleDelayed(envelope: OutgoingEnvelope, hooks: TransportHooks): void {
    const { delayMs, mandatory: _mandatory, ...due } = envelope;
    this.timers.schedule(delayMs ?? 0, () => this.route(due, hooks));
  }

  subscribe(
    request: SubscribeRequest,
    deliver: DeliverFn,
    prefetch: number | undefined,
  ): TransportSubscription {
    const consumer = new MemoryConsumer(deliver, prefetch ?? request.concurrency);
    for (const type of request.types) {
      const state = this.stateOf(type);
      let queue = state.groups.get(request.group);
      if (!queue) {
        queue = this.addQueue(state, type, request.group);
        if (request.startFrom === 'earliest') queue.enqueueHistory(state.history);
      }
      queue.attach(consumer);
    }
    return {
      stop: async () => {
        consumer.stopped = true;
        for (const queue of consumer.queues) {
          queue.detach(consumer);
          queue.pump();
        }
      },
    };
  }

  scheduleRetry(queue: GroupQueue, envelope: Envelope, delayMs: number): void {
    if (delayMs <= 0) {
      queue.enqueue(envelope);
      return;
    }
    queue.retrying++;
    this.timers.schedule(delayMs, () => {
      queue.retrying--;
      queue.enqueue(envelope);
    });
  }

  /** A group that keeps every later publish of `type` with nobody consuming it yet. */
  ensureGroup(type: string, group: string): void {
    const state = this.stateOf(type);
    if (!state.groups.has(group)) this.addQueue(state, type, group);
  }

  /** A new group queue, in the map lookups use and in the array publish walks. */
  private addQueue(state: TypeState, type: string, group: string): GroupQueue {
    const queue = new GroupQueue(type, group, this.options.bufferSize, this);
    state.groups.set(group, queue);
    state.queues.push(queue);
    return queue;
  }

  queue(type: string, group: string): GroupQueue | undefined {
    return this.types.get(type)?.groups.get(group);
  }

  /** Every (type, group) queue, for inspect(). */
  *queues(): IterableIterator<GroupQueue> {
    for (const state of this.types.values()) yield* state.groups.values();
  }

  stats(): Record<string, unknown> {
    let buffered = 0;
    let groups = 0;
    for (const state of this.types.values()) {
      for (const queue of state.groups.values()) {
        buffered += queue.depth;
        groups++;
      }
    }
    return { types: this.types.size, groups, buffered, delayed: this.timers.size };
  }

  /** Drops everything; returns how many buffered and delayed messages were lost with the process's memory. */
  clear(): { buffered: number; delayed: number } {
    let buffered = 0;
    for (const state of this.types.values())
      for (const queue of state.groups.values()) buffered += queue.clear();
    this.types.clear();
    return { buffered, delayed: this.timers.clear() };
  }

  private stateOf(type: string): TypeState {
    let state = this.types.get(type);
    if (!state) {
      state = { groups: new Map(), queues: [], history: new Ring(this.options.historySize) };
      this.types.set(type, state);
    }
    return state;
  }

  private blockingQueue(type: string): GroupQueue | undefined {
    const state = this.types.get(type);
    if (!state) return undefined;
    const queues = state.queues;
    for (let i = 0; i < queues.length; i++) if (queues[i]!.isFull) return queues[i];
    return undefined;
  }

  private route(envelope: Envelope, hooks: TransportHooks): void {
    const state = this.stateOf(envelope.type);
    state.history.push(envelope);
    const queues = state.queues;
    if (queues.length === 0) {
      hooks.unrouted(envelope);
      return;
    }
    for (let i = 0; i < queues.length; i++) queues[i]!.enqueue(envelope);
  }

  /** The slow path: wait (honouring the deadline) until every group of the type has room. */
  private async publishWhenRoom(
    envelopes: readonly OutgoingEnvelope[],
    from: number,
    context: TransportPublishContext,
    hooks: TransportHooks,
  ): Promise<void> {
    for (let i = from; i < envelopes.length; i++) {
      const envelope = envelopes[i]!;
      if (envelope.delayMs) {
        this.scheduleDelayed(envelope, hooks);
        continue;
      }
      for (let full = this.blockingQueue(envelope.type); full; full = this.blockingQueue(envelope.type)) {
        await full.waitForSpace(context.signal);
      }
      this.route(envelope, hooks);
    }
  }
}
