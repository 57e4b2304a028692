import {
  applyMiddleware,
  createQueueManager,
  MemoryIdempotencyStore,
  registerDriver,
  withIdempotency,
} from '@plugmq/core';
import {
  type BrokerHandle,
  DeliveryLedger,
  publishStream,
  sleep,
  uniqueGroup,
  uniqueType,
} from '@plugmq/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driver } from '../../src/index.js';
import { ownedRabbitBroker } from '../broker.js';

registerDriver(driver);

let broker: BrokerHandle;
beforeAll(async () => {
  broker = await ownedRabbitBroker();
}, 180_000);
afterAll(() => broker?.stop());

// At most 5 000 messages: enough for a restart to cut a few hundred acks, and quick.
const COUNT = Math.min(5_000, Number(process.env.FAULT_STREAM ?? 5_000));

// The fault suite's scenario 1 (a broker restart under a live stream) redelivers the messages
// whose acks the restart cut: the duplicates it counts. withIdempotency turns them into no-ops.
test('broker restarted mid-stream: with withIdempotency the side effects equal the distinct ids delivered', async () => {
  const config = {
    driver: 'rabbitmq',
    url: broker.url,
    exchange: `plugmq-idem-${process.pid}`,
    reconnectMaxDelayMs: 1_000,
    publishTimeoutMs: 60_000,
  };
  const producer = await createQueueManager(config);
  const consumer = await createQueueManager(config);
  const type = uniqueType('idem-restart');
  const group = uniqueGroup('idem-restart');
  const ledger = new DeliveryLedger();
  const effects = new Map<string, number>();
  const idempotent = applyMiddleware(
    async (message) => {
      await sleep(2);
      effects.set(message.id, (effects.get(message.id) ?? 0) + 1);
    },
    withIdempotency({ store: new MemoryIdempotencyStore(), group }),
  );
  try {
    await consumer.consume(
      type,
      async (message, context) => {
        ledger.record(message.id);
        await idempotent(message, context);
      },
      { group, concurrency: 16 },
    );
    let restarting: Promise<void> | undefined;
    await publishStream({
      manager: producer,
      type,
      count: COUNT,
      ledger,
      at: [Math.floor(COUNT / 3)],
      onIndex: () => {
        restarting = broker.restart();
      },
    });
    await restarting;
    await ledger.settle(120_000);
    await sleep(2_000);
    const repeated = [...effects].filter(([, count]) => count > 1);
    console.log(
      `[idempotent restart] rabbitmq: ${COUNT} published, ${ledger.resolved.size} resolved, ` +
        `${ledger.delivered.size} distinct ids delivered, ${ledger.duplicates()} duplicate deliveries, ` +
        `${[...effects.values()].reduce((a, b) => a + b, 0)} side effects`,
    );
    expect(ledger.lost(), 'resolved publishes never delivered').toEqual([]);
    expect(repeated, 'ids whose side effect ran more than once').toEqual([]);
    expect(effects.size).toBe(ledger.delivered.size);
  } finally {
    await producer.close();
    await consumer.close();
  }
}, 300_000);
