#!/usr/bin/env node
// Protocol-level readiness check for tools/brokers/*.sh (the testkit has the same checks in
// TypeScript, packages/testkit/src/brokers/probe.ts): an open port is not a serving broker.
//   node probe.mjs <redis|rabbitmq|kafka> <url> [timeout-ms]   exit 0 once it serves, 1 on timeout
//   node probe.mjs free-port                                    prints a free loopback port
import { connect, createServer } from 'node:net';

function exchange(host, port, request, complete, timeoutMs) {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const socket = connect(port, host);
    const timer = setTimeout(() => finish(new Error('timeout')), timeoutMs);
    function finish(err) {
      clearTimeout(timer);
      socket.destroy();
      err ? reject(err) : resolve(received);
    }
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (complete(received)) finish();
    });
    socket.on('error', finish);
    socket.on('close', () => finish(new Error('closed')));
  });
}

function endpoint(kind, url) {
  if (kind === 'kafka') {
    const first = url.replace(/^kafka:\/\//, '').split(',')[0];
    const at = first.lastIndexOf(':');
    return [first.slice(0, at), Number(first.slice(at + 1))];
  }
  const u = new URL(url);
  return [u.hostname, Number(u.port || (kind === 'redis' ? 6379 : 5672))];
}

async function once(kind, url) {
  const [host, port] = endpoint(kind, url);
  if (kind === 'redis') {
    const answer = await exchange(host, port, Buffer.from('PING\r\n'), (b) => b.includes('\r\n'), 2000);
    if (!answer.toString().startsWith('+PONG')) throw new Error(answer.toString());
  } else if (kind === 'rabbitmq') {
    const header = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
    const a = await exchange(host, port, header, (b) => b.length >= 11, 2000);
    if (!(a[0] === 1 && a.readUInt16BE(7) === 10 && a.readUInt16BE(9) === 10)) throw new Error('not AMQP');
  } else {
    const clientId = Buffer.from('plugmq-probe');
    const body = Buffer.alloc(14 + clientId.length);
    body.writeInt16BE(3, 0); // Metadata
    body.writeInt16BE(0, 2); // v0
    body.writeInt32BE(1, 4);
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    body.writeInt32BE(0, 10 + clientId.length); // all topics
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    const a = await exchange(
      host,
      port,
      Buffer.concat([size, body]),
      (b) => b.length >= 4 && b.length >= 4 + b.readInt32BE(0),
      2000,
    );
    if (!(a.length >= 12 && a.readInt32BE(8) >= 1)) throw new Error('no broker in metadata');
  }
}

const [kind, url, timeout = '120000'] = process.argv.slice(2);
if (kind === 'free-port') {
  const server = createServer().listen(0, '127.0.0.1', () => {
    process.stdout.write(`${server.address().port}\n`);
    server.close();
  });
} else {
  const deadline = Date.now() + Number(timeout);
  for (;;) {
    try {
      await once(kind, url);
      process.exit(0);
    } catch (err) {
      if (Date.now() > deadline) {
        console.error(`${kind} at ${url}: ${err.message}`);
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
