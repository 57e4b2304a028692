import { createServer, type Server } from 'node:net';

function listenOnAnyPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      if (port > 0) resolve({ server, port });
      else server.close(() => reject(new Error('could not get a free port')));
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * A TCP port that is free on loopback right now. The OS picks it (port 0), so two test runs on the
 * same machine never get the same one while both hold it; the tiny window between closing the probe
 * socket and the broker binding is acceptable for tests.
 */
export async function freePort(): Promise<number> {
  const { server, port } = await listenOnAnyPort();
  await close(server);
  return port;
}

/**
 * `count` distinct free ports: all are held until the last is found, so the OS cannot hand out one
 * just closed again (calling freePort() `count` times could).
 */
export async function freePorts(count: number): Promise<number[]> {
  const held: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const { server, port } = await listenOnAnyPort();
      held.push(server);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map(close));
  }
}
