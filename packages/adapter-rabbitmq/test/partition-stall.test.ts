import { type BrokerHandle, sleep, waitFor } from '@plugmq/testkit';
import * as amqp from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type BalancedSlot, PartitionBalancer } from '../src/partition-balance.js';
import { rabbitBroker } from './broker.js';

// The stall watch of partitioned subscriptions (partition-balance.ts): a partition queue with
// ready messages whose consumer gets none is consumed again. Checked against real queue states
// (ready messages or none) on the broker; what "consumed again" does is handOver's path, which
// partitions.test.ts covers.

let broker: BrokerHandle;
let connection: amqp.ChannelModel;

beforeAll(async () => {
  broker = await rabbitBroker();
  connection = await amqp.connect(broker.url);
}, 180_000);
afterAll(async () => {
  await connection?.close();
  await broker?.stop();
});

/** A queue with `ready` messages waiting in it. */
async function queueWith(ready: number): Promise<string> {
  const channel = await connection.createConfirmChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true });
  for (let index = 0; index < ready; index++) channel.sendToQueue(queue, Buffer.from(String(index)));
  await channel.waitForConfirms();
  await channel.close();
  return queue;
}

interface Watched {
  slot: BalancedSlot;
  recovered: number[];
  unsettled: number;
  balancer: PartitionBalancer;
}

function watch(queue: string, unsettled = 0): Watched {
  const slot: BalancedSlot = { type: 't', queue, partition: 1, tag: 'ctag', active: true, delivered: 0 };
  const watched: Watched = { slot, recovered: [], unsettled, balancer: undefined as never };
  watched.balancer = new PartitionBalancer(
    {
      slots: [slot],
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {} },
      connection: () => connection,
      handOver: () => false,
      unsettled: () => watched.unsettled,
      recover: (_slot, ready) => {
        watched.recovered.push(ready);
        return true;
      },
    },
    2,
    600,
  );
  watched.balancer.start();
  return watched;
}

test('ready messages, an idle consumer and no delivery: the partition is consumed again, once', async () => {
  const stalled = watch(await queueWith(3));
  try {
    await waitFor(() => stalled.recovered.length > 0, 5_000);
    expect(stalled.recovered).toEqual([3]);
  } finally {
    stalled.balancer.stop();
  }
}, 20_000);

test('no stall while deliveries arrive, while some are unsettled, or while the queue is empty', async () => {
  const delivering = watch(await queueWith(3));
  const busy = watch(await queueWith(3), 1);
  const empty = watch(await queueWith(0));
  const ticking = setInterval(() => delivering.slot.delivered++, 100);
  try {
    await sleep(2_500);
    expect(delivering.recovered).toEqual([]);
    expect(busy.recovered).toEqual([]);
    expect(empty.recovered).toEqual([]);
    // The same busy consumer once its deliveries settle: now it is a stall.
    busy.unsettled = 0;
    await waitFor(() => busy.recovered.length > 0, 5_000);
  } finally {
    clearInterval(ticking);
    for (const watched of [delivering, busy, empty]) watched.balancer.stop();
  }
}, 20_000);
