import { createServer } from 'node:net';

/**
 * A TCP port that is free on loopback right now. The OS picks it (port 0), so two test runs on the
 * same machine never get the same one while both hold it; the tiny window between closing the probe
 * socket and the broker binding is acceptable for tests.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}
