import type { DeliverFn, SubscribeRequest, TransportSubscription } from '@plugmq/core/driver';
import { type BalancedSlot, PartitionBalancer } from './partition-balance.js';
import { RabbitSubscription, type SubscriptionDeps } from './subscription.js';

/**
 * A subscription of a partitioned group: one RabbitSubscription per (type, partition), each on a
 * channel of its own, so one partition can be handed over to another subscription of the group
 * by closing its channel alone (see PartitionBalancer), and each partition's prefetch is its own.
 * A group consumed by S subscriptions of N partitions has up to N active consumers; the others
 * wait, each ready to take over a partition whose consumer goes away.
 */
export class PartitionedSubscription implements TransportSubscription {
  private readonly parts: RabbitSubscription[] = [];
  private readonly owners = new Map<BalancedSlot, RabbitSubscription>();
  private readonly balancer: PartitionBalancer;

  constructor(request: SubscribeRequest, deliver: DeliverFn, deps: SubscriptionDeps) {
    for (const type of request.types) {
      for (let partition = 0; partition < deps.partitions; partition++) {
        const part = new RabbitSubscription({ ...request, types: [type] }, deliver, deps, partition);
        this.parts.push(part);
        for (const slot of part.queues) this.owners.set(slot, part);
      }
    }
    this.balancer = new PartitionBalancer(
      {
        slots: [...this.owners.keys()],
        logger: deps.logger,
        connection: () => deps.connections.current,
        handOver: (slot) => this.owners.get(slot)?.handOver() ?? false,
        unsettled: (slot) => this.owners.get(slot)?.inFlight ?? 0,
        recover: (slot, ready) => this.owners.get(slot)?.recover(ready) ?? false,
      },
      deps.partitions,
    );
  }

  /** Resolves once every partition is consumed; on failure, stops the parts that started. */
  async start(signal: AbortSignal): Promise<void> {
    const started = await Promise.allSettled(this.parts.map((part) => part.start(signal)));
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) {
      await Promise.all(this.parts.map((part) => part.stop()));
      throw failed.reason;
    }
    this.balancer.start();
  }

  async stop(): Promise<void> {
    this.balancer.stop();
    await Promise.all(this.parts.map((part) => part.stop()));
  }
}
