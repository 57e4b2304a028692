import { createQueueManager, registerDriver } from '@plugmq/core';
import { silentLogger } from '@plugmq/core/driver';
import { type BrokerHandle, uniqueGroup, uniqueType } from '@plugmq/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { KafkaClient } from '../src/connection.js';
import { driver } from '../src/index.js';
import { KafkajsClient } from '../src/kafkajs-client.js';
import { validateKafkaConfig } from '../src/options.js';
import { loadPlatformaticClient } from '../src/platformatic-client.js';
import { kafkaBroker, TEST_OPTIONS } from './broker.js';

registerDriver(driver);

// A stopping member whose last commit failed in a rebalance commits once it left the group,
// through the admin API (KafkaClient.commitForEmptyGroup). The broker takes that only from a
// group with no member: a live member owns the partitions and its commits must win.

let broker: BrokerHandle | undefined;
beforeAll(async () => {
  broker = await kafkaBroker();
}, 180_000);
afterAll(() => broker?.stop());

const clients: Record<string, (url: string) => Promise<KafkaClient>> = {
  kafkajs: async (url) => new KafkajsClient(validateKafkaConfig({ driver: 'kafka', url }), silentLogger),
  platformatic: (url) =>
    loadPlatformaticClient(
      validateKafkaConfig({ driver: 'kafka', url, client: 'platformatic' }),
      silentLogger,
    ),
};

describe.each(Object.keys(clients))('commitForEmptyGroup (%s)', (name) => {
  test('commits for a group with no member; a group with a member refuses it', async () => {
    const url = broker!.url;
    const client = await clients[name]!(url);
    await client.connect();
    const manager = await createQueueManager({ driver: 'kafka', url, ...TEST_OPTIONS, client: name });
    try {
      const type = uniqueType('leaving');
      const empty = uniqueGroup('empty');
      await client.createTopics([{ topic: type, partitions: 1, replicationFactor: 1 }]);
      for (let i = 0; i < 3; i++) await manager.publish(type, { i });

      await client.commitForEmptyGroup(`plugmq.${empty}`, [{ topic: type, partition: 0, offset: 2 }]);
      expect(await client.committedOffsets(`plugmq.${empty}`, type)).toEqual([{ partition: 0, offset: 2 }]);

      const live = uniqueGroup('live');
      await manager.consume(type, () => {}, { group: live, startFrom: 'earliest' });
      await expect(
        client.commitForEmptyGroup(`plugmq.${live}`, [{ topic: type, partition: 0, offset: 1 }]),
      ).rejects.toThrow();
    } finally {
      await manager.close();
      await client.close();
    }
  }, 60_000);
});
