import { connect } from 'node:net';

// A Kafka Metadata request (v1) spoken over a raw socket: the cluster harness needs the brokers,
// each partition's leader and its in-sync replicas, and the testkit does not depend on a Kafka
// client at run time (see brokers/probe.ts).

export interface PartitionMetadata {
  readonly partition: number;
  readonly errorCode: number;
  /** Node id of the leader, -1 while there is none. */
  readonly leader: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

export interface TopicMetadata {
  readonly name: string;
  readonly errorCode: number;
  readonly partitions: readonly PartitionMetadata[];
}

export interface ClusterMetadata {
  /** Node ids of the brokers the answering node knows as alive (registered and not fenced). */
  readonly brokers: readonly number[];
  readonly controller: number;
  readonly topics: readonly TopicMetadata[];
}

const API_METADATA = 3;

function request(topics: readonly string[] | undefined): Buffer {
  const clientId = Buffer.from('plugmq-cluster');
  const names = (topics ?? []).map((t) => Buffer.from(t));
  const size = 2 + 2 + 4 + 2 + clientId.length + 4 + names.reduce((s, n) => s + 2 + n.length, 0);
  const out = Buffer.alloc(4 + size);
  let o = out.writeInt32BE(size, 0);
  o = out.writeInt16BE(API_METADATA, o);
  o = out.writeInt16BE(1, o);
  o = out.writeInt32BE(1, o); // correlation id
  o = out.writeInt16BE(clientId.length, o);
  o += clientId.copy(out, o);
  // v1: a null array (-1) asks for every topic, internal ones included.
  o = out.writeInt32BE(topics === undefined ? -1 : names.length, o);
  for (const name of names) {
    o = out.writeInt16BE(name.length, o);
    o += name.copy(out, o);
  }
  return out;
}

class Reader {
  private o = 0;
  constructor(private readonly b: Buffer) {}
  int16(): number {
    const v = this.b.readInt16BE(this.o);
    this.o += 2;
    return v;
  }
  int32(): number {
    const v = this.b.readInt32BE(this.o);
    this.o += 4;
    return v;
  }
  bool(): boolean {
    return this.b.readInt8(this.o++) !== 0;
  }
  string(): string {
    const length = this.int16();
    if (length < 0) return '';
    const v = this.b.toString('utf8', this.o, this.o + length);
    this.o += length;
    return v;
  }
  array<T>(item: () => T): T[] {
    const length = this.int32();
    return Array.from({ length: Math.max(length, 0) }, item);
  }
}

function parse(answer: Buffer): ClusterMetadata {
  const r = new Reader(answer);
  r.int32(); // size
  r.int32(); // correlation id
  const brokers = r.array(() => {
    const id = r.int32();
    r.string(); // host
    r.int32(); // port
    r.string(); // rack (nullable)
    return id;
  });
  const controller = r.int32();
  const topics = r.array(() => {
    const errorCode = r.int16();
    const name = r.string();
    r.bool(); // is internal
    const partitions = r.array(() => ({
      errorCode: r.int16(),
      partition: r.int32(),
      leader: r.int32(),
      replicas: r.array(() => r.int32()),
      isr: r.array(() => r.int32()),
    }));
    return { name, errorCode, partitions };
  });
  return { brokers, controller, topics };
}

/** Asks the broker at host:port for metadata (`topics` undefined: every topic). */
export function fetchMetadata(
  host: string,
  port: number,
  topics?: readonly string[],
  timeoutMs = 3_000,
): Promise<ClusterMetadata> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const socket = connect(port, host);
    const timer = setTimeout(
      () => finish(new Error(`no metadata from ${host}:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let done = false;
    function finish(err?: Error): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else {
        try {
          resolve(parse(received));
        } catch (parseError) {
          reject(parseError);
        }
      }
    }
    socket.on('connect', () => socket.write(request(topics)));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= 4 + received.readInt32BE(0)) finish();
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`${host}:${port} closed before a full metadata answer`)));
  });
}
