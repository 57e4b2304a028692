import { inspect } from 'node:util';
import { isPlugmqError, silentLogger } from '@plugmq/core';
import kafkajs from 'kafkajs';
import { describe, expect, test } from 'vitest';
import { DONE, PartitionTracker, UNDONE } from '../src/offset-tracker.js';
import { validateKafkaConfig } from '../src/options.js';
import { keyPartition } from '../src/partitioner.js';
import { retryTopic } from '../src/topology.js';
import { KafkaTransport } from '../src/transport.js';

// Driver logic that needs no broker: configuration, credentials, offsets, naming.

function configError(config: Record<string, unknown>): string {
  try {
    validateKafkaConfig({ driver: 'kafka', ...config });
  } catch (error) {
    expect(isPlugmqError(error, 'CONFIG_INVALID')).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('configuration', () => {
  test('defaults, a kafka:// URL and a bare broker list', () => {
    const config = validateKafkaConfig({ driver: 'kafka' });
    expect(config.brokers).toEqual(['127.0.0.1:9092']);
    expect(config).toMatchObject({ partitions: 3, replicationFactor: 1, groupPrefix: 'plugmq.' });
    expect(validateKafkaConfig({ driver: 'kafka', url: 'kafka://a:9092,b:9093' }).brokers).toEqual([
      'a:9092',
      'b:9093',
    ]);
    expect(validateKafkaConfig({ driver: 'kafka', url: 'a:9092,b:9093' }).brokers).toEqual([
      'a:9092',
      'b:9093',
    ]);
  });

  test('bad options are CONFIG_INVALID naming the field, without the password', () => {
    expect(configError({ url: 42 })).toMatch(/^url/);
    const message = configError({ url: 'amqp://bob:s3cret@host:5672' });
    expect(message).toMatch(/^url/);
    expect(message).not.toContain('s3cret');
    expect(configError({ partitions: 0 })).toMatch(/^partitions/);
    expect(configError({ sessionTimeoutMs: 6000, heartbeatIntervalMs: 6000 })).toMatch(
      /^heartbeatIntervalMs/,
    );
  });

  test('credentials never show in inspect or JSON output of the validated config, and survive re-validation', () => {
    const once = validateKafkaConfig({ driver: 'kafka', url: 'kafka://alice:s3cret@127.0.0.1:9092' });
    const twice = validateKafkaConfig(once);
    for (const config of [once, twice]) {
      expect(inspect(config, { depth: 10 })).not.toContain('s3cret');
      expect(JSON.stringify(config)).not.toContain('s3cret');
      expect(config.sasl?.reveal()).toMatchObject({
        mechanism: 'plain',
        username: 'alice',
        password: 's3cret',
      });
    }
  });
});

test('inspecting the transport (config, kafkajs client inside) never shows the password', () => {
  const config = validateKafkaConfig({ driver: 'kafka', url: 'kafka://alice:s3cret@127.0.0.1:1' });
  const transport = new KafkaTransport(config, silentLogger);
  expect(inspect(transport, { depth: 12 })).not.toContain('s3cret');
});

describe('offset tracking', () => {
  test('commits only below the first unsettled message, whatever order handlers finish in', () => {
    const tracker = new PartitionTracker('t', 0);
    const slots = [10, 11, 12, 13].map((offset) => tracker.dispatch(offset));
    expect(tracker.committable()).toBe(10);
    slots[1]!.state = DONE;
    slots[3]!.state = DONE;
    expect(tracker.committable()).toBe(10); // 10 still running
    slots[0]!.state = DONE;
    expect(tracker.committable()).toBe(12);
    tracker.committed = 12;
    slots[2]!.state = DONE;
    expect(tracker.committable()).toBe(14);
  });

  test('a released message is never committed past; rewinding reads it again', () => {
    const tracker = new PartitionTracker('t', 0);
    const slots = [0, 1, 2].map((offset) => tracker.dispatch(offset));
    slots[0]!.state = DONE;
    slots[1]!.state = UNDONE;
    slots[2]!.state = DONE;
    expect(tracker.committable()).toBe(1);
    expect(tracker.firstUndone()?.offset).toBe(1);
    tracker.rewind(1);
    expect(tracker.nextFetch).toBe(1);
    expect(tracker.committable()).toBe(1);
  });
});

describe('retry topics', () => {
  test('<type>.retry.<group>, with a hash where the group has characters a topic cannot hold', () => {
    expect(retryTopic('orders', 'billing')).toBe('orders.retry.billing');
    const odd = retryTopic('orders', 'billing team/eu');
    expect(odd).toMatch(/^orders\.retry\.billing_team_eu-[0-9a-f]{12}$/);
    expect(retryTopic('orders', 'billing team/eu')).toBe(odd);
    expect(retryTopic('t'.repeat(200), 'g'.repeat(100)).length).toBeLessThanOrEqual(249);
  });
});

describe('key partitioning', () => {
  test('a key reaches the partition kafkajs (and the Java client) would choose', () => {
    const reference = kafkajs.Partitioners.DefaultPartitioner();
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'customer-9', 'ключ', '🔑 key', 'x'.repeat(257)];
    for (let i = 0; i < 500; i++) keys.push(`order-${i}-${(i * 7919).toString(36)}`);
    for (const count of [1, 3, 6, 7, 64]) {
      const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        replicas: [0],
        isr: [0],
        offlineReplicas: [],
        partitionErrorCode: 0,
      }));
      for (const key of keys) {
        const expected = reference({ topic: 't', partitionMetadata, message: { key, value: null } });
        expect(keyPartition(key, count), `key ${JSON.stringify(key)} of ${count}`).toBe(expected);
      }
    }
  });
});

describe('message size', () => {
  const envelope = (bytes: number, headers: Record<string, string> = {}) => ({
    id: 'm-1',
    type: 'uploads.stored',
    timestamp: Date.now(),
    headers,
    contentType: 'application/json',
    body: new Uint8Array(bytes),
    attempt: 1,
  });
  const publish = (transport: KafkaTransport, bytes: number, headers?: Record<string, string>) =>
    transport.publish([envelope(bytes, headers)], { signal: new AbortController().signal });

  // Nothing listens on port 1: a publish that got past the check would hang or fail differently.
  test("a 5 MB body is refused before sending, naming Kafka's 1 MiB default and how to raise it", async () => {
    const transport = new KafkaTransport(
      validateKafkaConfig({ driver: 'kafka', url: '127.0.0.1:1' }),
      silentLogger,
    );
    const error = await publish(transport, 5 * 1024 * 1024).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isPlugmqError(error, 'INVALID_ARGUMENT')).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('m-1');
    expect(message).toContain('1048588');
    expect(message).toContain('maxMessageBytes');
    expect(message).toContain('message.max.bytes');
  });

  test('headers count towards the limit; maxMessageBytes moves it', async () => {
    const small = new KafkaTransport(
      validateKafkaConfig({ driver: 'kafka', url: '127.0.0.1:1', maxMessageBytes: 2_000 }),
      silentLogger,
    );
    const error = await publish(small, 1_000, { trace: 'x'.repeat(1_000) }).catch(
      (caught: unknown) => caught,
    );
    expect(isPlugmqError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect((error as Error).message).toContain('2000 bytes');
    expect(configError({ maxMessageBytes: 0 })).toMatch(/^maxMessageBytes/);
  });
});
