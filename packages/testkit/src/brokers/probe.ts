import { connect } from 'node:net';
import type { BrokerKind } from './types.js';

// Protocol-level readiness checks with no client library: an open port is not a serving broker
// (RabbitMQ and Kafka accept TCP well before they answer), so each check speaks a few bytes of the
// broker's own protocol. No client dependency keeps @plugmq/testkit light for every driver.

interface Endpoint {
  host: string;
  port: number;
}

/** `kafka://h1:9092,h2:9092` or a bare `h1:9092,h2:9092` → kafkajs' `brokers` list. */
export function kafkaBrokers(url: string): string[] {
  return url
    .replace(/^kafka:\/\//, '')
    .split(',')
    .map((s) => s.trim().replace(/\/.*$/, ''))
    .filter((s) => s.length > 0);
}

function endpointOf(kind: BrokerKind, url: string): Endpoint {
  if (kind === 'kafka') {
    const first = kafkaBrokers(url)[0] ?? '';
    const at = first.lastIndexOf(':');
    return { host: first.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(first.slice(at + 1) || 9092) };
  }
  const parsed = new URL(url);
  const fallback = kind === 'redis' ? 6379 : 5672;
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || fallback) };
}

/** Sends `request`, collects bytes until `complete(buffer)` says so, or fails after `timeoutMs`. */
function exchange(
  endpoint: Endpoint,
  request: Buffer,
  complete: (b: Buffer) => boolean,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const socket = connect(endpoint.port, endpoint.host);
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    function finish(err?: Error): void {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(received);
    }
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (complete(received)) finish();
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error('connection closed before a full answer')));
  });
}

async function redisServes(url: string, timeoutMs: number): Promise<void> {
  const parsed = new URL(url);
  const auth = parsed.password
    ? `AUTH ${decodeURIComponent(parsed.username || 'default')} ${decodeURIComponent(parsed.password)}\r\n`
    : '';
  const answer = await exchange(
    endpointOf('redis', url),
    Buffer.from(`${auth}PING\r\n`),
    (b) => b.toString().split('\r\n').length > (auth ? 2 : 1),
    timeoutMs,
  );
  // -LOADING (replaying the AOF) means not ready yet; -NOAUTH still proves a serving Redis.
  const text = answer.toString();
  if (!text.includes('+PONG') && !text.startsWith('-NOAUTH'))
    throw new Error(`Redis answered ${text.trim()}`);
}

async function amqpServes(url: string, timeoutMs: number): Promise<void> {
  // The AMQP 0-9-1 protocol header; a serving broker answers with a Connection.Start method frame.
  const header = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
  const answer = await exchange(endpointOf('rabbitmq', url), header, (b) => b.length >= 11, timeoutMs);
  const isConnectionStart = answer[0] === 1 && answer.readUInt16BE(7) === 10 && answer.readUInt16BE(9) === 10;
  if (!isConnectionStart) throw new Error('not an AMQP 0-9-1 Connection.Start');
}

async function kafkaServes(url: string, timeoutMs: number): Promise<void> {
  // Metadata v0 for all topics: answered only once the broker is registered with its controller.
  const clientId = Buffer.from('plugmq-probe');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length + 4);
  let o = body.writeInt16BE(3, 0); // api key: Metadata
  o = body.writeInt16BE(0, o); // version 0
  o = body.writeInt32BE(1, o); // correlation id
  o = body.writeInt16BE(clientId.length, o);
  o += clientId.copy(body, o);
  body.writeInt32BE(0, o); // no topics listed = all topics
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  const answer = await exchange(
    endpointOf('kafka', url),
    Buffer.concat([size, body]),
    (b) => b.length >= 4 && b.length >= 4 + b.readInt32BE(0),
    timeoutMs,
  );
  const brokers = answer.length >= 12 ? answer.readInt32BE(8) : 0;
  if (brokers < 1) throw new Error('Kafka metadata lists no broker yet');
}

/** One protocol-level check: resolves if the broker at `url` serves, rejects with why not. */
export function probeBroker(kind: BrokerKind, url: string, timeoutMs = 2_000): Promise<void> {
  if (kind === 'redis') return redisServes(url, timeoutMs);
  if (kind === 'rabbitmq') return amqpServes(url, timeoutMs);
  return kafkaServes(url, timeoutMs);
}

/**
 * Polls probeBroker until it passes. `stillAlive` lets the caller stop early when the broker
 * process or container has already died, so a crash is reported at once with its reason.
 */
export async function waitUntilServes(
  kind: BrokerKind,
  url: string,
  timeoutMs: number,
  stillAlive: () => Promise<string | undefined> = async () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    try {
      await probeBroker(kind, url);
      return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    const died = await stillAlive();
    if (died) throw new Error(`${kind} at ${url} died while starting: ${died}`);
    if (Date.now() > deadline)
      throw new Error(`${kind} at ${url} did not serve within ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
