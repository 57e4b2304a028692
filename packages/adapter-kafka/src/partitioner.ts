/**
 * Kafka's default key partitioning (the Java client's murmur2, as kafkajs' DefaultPartitioner
 * computes it): the same key reaches the same partition whichever client wrote it. The publisher
 * chooses every record's partition itself, because it must know which partition each record
 * waits on to send partitions independently and to check that each one was acknowledged.
 */
const SEED = 0x9747b28c;
const M = 0x5bd1e995;

function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The tail bytes, as the reference implementation's falling-through switch mixes them.
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h;
}

/** The partition of `key` among `partitions`, as every Kafka client's default partitioner picks it. */
export function keyPartition(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key)) & 0x7fffffff) % partitions;
}
