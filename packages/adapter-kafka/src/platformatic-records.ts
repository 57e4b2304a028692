import type { RecordsBatch } from '@platformatic/kafka';
import type { FetchedRecord } from './connection.js';
import { chainErrors } from './platformatic-errors.js';

/** Record batches with this attribute bit are transaction markers, not records. */
const IS_CONTROL = 1 << 5;

/**
 * The records of a fetch answer from offset `from` on (the broker answers from the start of the
 * batch that holds `from`), and the last offset the answer covered, markers included: a
 * partition whose answer held only markers moves past them.
 */
export function toRecords(
  batches: readonly RecordsBatch[],
  from: bigint,
): { records: FetchedRecord[]; lastOffset: bigint } {
  const records: FetchedRecord[] = [];
  let lastOffset = from - 1n;
  for (const batch of batches) {
    const batchLast = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    if (batchLast > lastOffset) lastOffset = batchLast;
    if ((batch.attributes & IS_CONTROL) !== 0) continue;
    for (const record of batch.records) {
      const offset = batch.firstOffset + BigInt(record.offsetDelta);
      if (offset < from) continue;
      records.push({
        offset: Number(offset),
        key: record.key === null ? undefined : record.key.toString(),
        value: record.value ?? Buffer.alloc(0),
        headers: headersToStrings(record.headers),
        timestamp: Number(batch.firstTimestamp + record.timestampDelta),
      });
    }
  }
  return { records, lastOffset };
}

export function headersToStrings(headers: readonly [Buffer | null, Buffer | null][]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (name === null || value === null) continue;
    const key = name.toString();
    // The first value of a repeated header wins, as with kafkajs.
    if (!Object.hasOwn(out, key)) out[key] = value.toString();
  }
  return out;
}

const OFFSET_OUT_OF_RANGE = 1;

export interface OutOfRange {
  readonly topic: string;
  readonly partition: number;
  readonly logStartOffset: bigint;
  readonly highWatermark: bigint;
}

interface FetchAnswer {
  responses: {
    topicId: string;
    partitions: {
      partitionIndex: number;
      errorCode: number;
      logStartOffset: bigint;
      highWatermark: bigint;
    }[];
  }[];
}

/**
 * The partitions a failed fetch was refused for because their position is outside the log
 * (retention deleted it, or the log was truncated), with the log's bounds. The library fails the
 * whole fetch for one such partition; its answer is on the error. `topicNames`: id → name.
 */
export function outOfRange(error: unknown, topicNames: ReadonlyMap<string, string>): OutOfRange[] {
  const found: OutOfRange[] = [];
  for (const entry of chainErrors(error)) {
    const response = (entry as { response?: unknown }).response as FetchAnswer | undefined;
    if (!Array.isArray(response?.responses)) continue;
    for (const { topicId, partitions } of response.responses) {
      const topic = topicNames.get(topicId);
      for (const partition of partitions ?? []) {
        if (topic === undefined || partition.errorCode !== OFFSET_OUT_OF_RANGE) continue;
        const { partitionIndex, logStartOffset, highWatermark } = partition;
        found.push({ topic, partition: partitionIndex, logStartOffset, highWatermark });
      }
    }
    if (found.length > 0) break;
  }
  return found;
}

export const idOf = (topic: string, partition: number): string => `${partition}:${topic}`;

type OffsetsByTopic = ReadonlyMap<string, readonly bigint[]>;

/** Where each partition of `missing` starts: its committed offset, else the topic's fallback end. */
export function startOffsets(
  missing: ReadonlyMap<string, readonly number[]>,
  committed: OffsetsByTopic,
  earliest: OffsetsByTopic,
  latest: OffsetsByTopic,
): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [topic, partitions] of missing) {
    for (const partition of partitions) {
      const offset = committed.get(topic)?.[partition];
      const fallback = (earliest.get(topic) ?? latest.get(topic))?.[partition] ?? 0n;
      out.set(idOf(topic, partition), offset !== undefined && offset >= 0n ? offset : fallback);
    }
  }
  return out;
}
