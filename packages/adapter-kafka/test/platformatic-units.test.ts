import * as platformatic from '@platformatic/kafka';
import {
  Consumer,
  MultipleErrors,
  NetworkError,
  ProtocolError,
  Reader,
  type RecordsBatch,
  UserError,
} from '@platformatic/kafka';
import { isPlugmqError } from '@plugmq/core';
import { describe, expect, test } from 'vitest';
import { validateKafkaConfig } from '../src/options.js';
import { subscriptionAwareAssigner } from '../src/platformatic-assigner.js';
import { nodeSupportsPlatformatic } from '../src/platformatic-client.js';
import { apiIds, connectFailure, isTransient } from '../src/platformatic-errors.js';
import { guardBrokerLookups } from '../src/platformatic-guard.js';
import { outOfRange, startOffsets, toRecords } from '../src/platformatic-records.js';

// The @platformatic/kafka client's logic that needs no broker.

describe('client option', () => {
  test("defaults to 'kafkajs'; 'platformatic' is accepted; anything else is CONFIG_INVALID naming it", () => {
    expect(validateKafkaConfig({ driver: 'kafka' }).client).toBe('kafkajs');
    expect(validateKafkaConfig({ driver: 'kafka', client: 'platformatic' }).client).toBe('platformatic');
    for (const client of ['rdkafka', 1, 'KafkaJS']) {
      let error: unknown;
      try {
        validateKafkaConfig({ driver: 'kafka', client });
      } catch (caught) {
        error = caught;
      }
      expect(isPlugmqError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toContain('client');
    }
  });

  test('the Node versions the library supports (>= 20.19.4)', () => {
    expect(nodeSupportsPlatformatic('20.10.0')).toBe(false);
    expect(nodeSupportsPlatformatic('20.19.3')).toBe(false);
    expect(nodeSupportsPlatformatic('20.19.4')).toBe(true);
    expect(nodeSupportsPlatformatic('20.20.2')).toBe(true);
    expect(nodeSupportsPlatformatic('22.1.0')).toBe(true);
    expect(nodeSupportsPlatformatic('18.20.0')).toBe(false);
  });
});

test('the assigner gives each topic only to the members subscribed to it, round-robin', () => {
  const members = new Map([
    ['m1', { memberId: 'm1', version: 0, topics: ['a', 'b'] }],
    ['m2', { memberId: 'm2', version: 0, topics: ['a'] }],
  ]);
  const topic = (count: number) => ({ id: 'x', partitionsCount: count, partitions: [], lastUpdate: 0 });
  const metadata = {
    id: 'c',
    brokers: new Map(),
    controllerId: 1,
    topics: new Map([
      ['a', topic(4)],
      ['b', topic(2)],
    ]),
    lastUpdate: 0,
  };
  const result = subscriptionAwareAssigner('m1', members, new Set(['a', 'b']), metadata);
  const of = (id: string) =>
    Object.fromEntries(
      [...(result.find((entry) => entry.memberId === id)?.assignments.values() ?? [])].map((a) => [
        a.topic,
        a.partitions,
      ]),
    );
  expect(of('m1')).toEqual({ a: [0, 2], b: [0, 1] });
  expect(of('m2')).toEqual({ a: [1, 3] });
});

test('fetched batches: markers skipped but moved past, records before the position skipped, headers decoded', () => {
  const batch = (firstOffset: bigint, attributes: number, offsets: number[]): RecordsBatch =>
    ({
      firstOffset,
      attributes,
      lastOffsetDelta: offsets[offsets.length - 1] ?? 0,
      firstTimestamp: 1_000n,
      records: offsets.map((offsetDelta) => ({
        offsetDelta,
        timestampDelta: BigInt(offsetDelta),
        key: offsetDelta === 0 ? null : Buffer.from(`k${offsetDelta}`),
        value: Buffer.from('v'),
        headers: [
          [Buffer.from('h'), Buffer.from('1')],
          [Buffer.from('h'), Buffer.from('2')],
        ],
      })),
    }) as unknown as RecordsBatch;
  const { records, lastOffset } = toRecords([batch(10n, 0, [0, 1, 2]), batch(13n, 1 << 5, [0])], 11n);
  expect(records.map((record) => record.offset)).toEqual([11, 12]);
  expect(records[0]).toMatchObject({ key: 'k1', headers: { h: '1' }, timestamp: 1_001 });
  expect(lastOffset).toBe(13n);
  expect(toRecords([batch(13n, 1 << 5, [0])], 13n)).toEqual({ records: [], lastOffset: 13n });
});

test('errors: retriable protocol and network errors are transient, the rest is not', () => {
  const leaderMoved = new ProtocolError('NOT_LEADER_OR_FOLLOWER');
  const tooLarge = new ProtocolError('MESSAGE_TOO_LARGE');
  expect(isTransient(leaderMoved)).toBe(true);
  expect(isTransient(tooLarge)).toBe(false);
  expect(isTransient(new NetworkError('socket closed'))).toBe(true);
  expect(isTransient(new UserError('bad option'))).toBe(false);
  const retried = new MultipleErrors('produce failed 4 times.', [leaderMoved, new NetworkError('gone')]);
  expect(isTransient(retried)).toBe(true);
  expect(isTransient(new MultipleErrors('x', [leaderMoved, tooLarge]))).toBe(false);
  expect([...apiIds(retried)]).toEqual(['NOT_LEADER_OR_FOLLOWER']);
});

test('a fetch refused as out of range names its partitions and the log bounds', () => {
  const response = {
    responses: [
      {
        topicId: 'id-a',
        partitions: [
          { partitionIndex: 0, errorCode: 0, logStartOffset: 0n, highWatermark: 5n },
          { partitionIndex: 1, errorCode: 1, logStartOffset: 40n, highWatermark: 90n },
        ],
      },
    ],
  };
  const error = new MultipleErrors('fetch failed 1 times.', [
    Object.assign(new ProtocolError('OFFSET_OUT_OF_RANGE'), { response }),
  ]);
  expect(outOfRange(error, new Map([['id-a', 'a']]))).toEqual([
    { topic: 'a', partition: 1, logStartOffset: 40n, highWatermark: 90n },
  ]);
  expect(outOfRange(new NetworkError('gone'), new Map())).toEqual([]);
});

test('a partition starts at its committed offset, else at the end its topic falls back to', () => {
  const starts = startOffsets(
    new Map([
      ['t', [0, 1]],
      ['r', [0]],
    ]),
    new Map([
      ['t', [7n, -1n]],
      ['r', [-1n]],
    ]),
    new Map([['r', [3n]]]),
    new Map([['t', [9n, 12n]]]),
  );
  expect(Object.fromEntries(starts)).toEqual({ '0:t': 7n, '1:t': 12n, '0:r': 3n });
});

test('a response cut short and a send on a replaced producer are transient (rolling restarts)', () => {
  let cutShort: unknown;
  try {
    Reader.from(Buffer.alloc(2)).readInt32();
  } catch (error) {
    cutShort = error;
  }
  expect((cutShort as { code?: string }).code).toBe('OUT_OF_BOUNDS');
  expect(isTransient(new MultipleErrors('produce failed 4 times.', [cutShort as Error]))).toBe(true);
  // What the library's connection pool passes on once its client was closed.
  expect(isTransient(new MultipleErrors('x', [new Error('Connection pool is closed.')]))).toBe(true);
  expect(isTransient(new Error('some other plain error'))).toBe(false);
});

test('a broker missing from the cached metadata is a retriable error, and the metadata is dropped', async () => {
  const consumer = new Consumer({ clientId: 't', groupId: 'g', bootstrapBrokers: ['127.0.0.1:1'] });
  let cleared = 0;
  const clear = consumer.clearMetadata.bind(consumer);
  consumer.clearMetadata = () => {
    cleared++;
    clear();
  };
  guardBrokerLookups(platformatic, consumer);
  // Unguarded, the library's pool reads `undefined.host` and throws inside its callback chain.
  const error = await new Promise<unknown>((resolve) => {
    (consumer as unknown as Record<symbol, (b: unknown, cb: (e: unknown) => void) => void>)[
      platformatic.kGetConnection
    ]!(undefined, resolve);
  });
  expect(error).toBeInstanceOf(NetworkError);
  expect((error as { canRetry?: boolean }).canRetry).toBe(true);
  expect(isTransient(error)).toBe(true);
  expect(cleared).toBe(1);
  await consumer.close();
});

test('an unknown topic (just created elsewhere) is transient', () => {
  expect(isTransient(new UserError('Unknown topic orders.'))).toBe(true);
});

test('a failed connect says what the sockets met', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
    code: 'ECONNREFUSED',
    address: '127.0.0.1',
    port: 1,
  });
  const error = new MultipleErrors('Cannot connect to any broker.', [
    new NetworkError('Connection to 127.0.0.1:1 failed.', { cause: refused }),
  ]);
  expect(connectFailure(error)).toBe('connection refused at 127.0.0.1:1');
});
