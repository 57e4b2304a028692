import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { uniqueGroup, uniqueType, waitFor } from '@plugmq/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { driver } from '../src/index.js';

registerDriver(driver);
const run = promisify(execFile);

// rediss:// with a CA passed through `tls`, against a redis-server with a TLS port only, started
// here with a throw-away self-signed certificate (openssl). Needs redis-server and openssl.
async function available(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const canRun = await available();
if (!canRun && process.env.CI === 'true')
  throw new Error('redis-server/openssl missing: cannot run the TLS test under CI');

(canRun ? describe : describe.skip)('TLS (rediss://) [needs redis-server and openssl]', () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let port: number;
  let ca: Buffer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugmq-redis-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    ca = await readFile(cert);
    port = await freePort();
    server = spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--tls-cert-file',
        cert,
        '--tls-key-file',
        key,
        '--tls-ca-cert-file',
        cert,
        '--tls-auth-clients',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    await waitFor(
      () =>
        run('redis-cli', ['--tls', '--cacert', cert, '-p', String(port), 'ping']).then(
          ({ stdout }) => stdout.includes('PONG'),
          () => false,
        ),
      20_000,
      'the TLS redis-server to answer',
    );
  }, 60_000);
  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  test('publish and consume over rediss:// with the CA passed through `tls`', async () => {
    const manager = await createQueueManager({
      driver: 'redis',
      url: `rediss://127.0.0.1:${port}`,
      tls: { ca },
    });
    const type = uniqueType('tls');
    const got: string[] = [];
    await manager.consume<string>(type, (message) => void got.push(message.body), { group: uniqueGroup() });
    await manager.publish(type, 'secret hello');
    await waitFor(() => got.length === 1, 5_000, 'the message over TLS');
    expect(got).toEqual(['secret hello']);
    expect((await manager.health()).ok).toBe(true);
    await manager.close();
  });

  test('an untrusted server certificate fails create() with CONNECTION', async () => {
    const error = await createQueueManager({
      driver: 'redis',
      url: `rediss://127.0.0.1:${port}`,
      connectTimeoutMs: 1_500,
    }).then(
      () => undefined,
      (caught: { code?: string }) => caught,
    );
    expect(error?.code).toBe('CONNECTION');
  });
});
