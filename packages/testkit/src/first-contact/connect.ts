import { createServer } from 'node:net';
import { createQueueManager, type PlugmqConfig } from '@plugmq/core';
import { expect, it } from 'vitest';
import { type CodedError, expectPlugmqError } from '../conformance/helpers.js';
import { connectInChild } from './child.js';
import type { ConnectFailureOptions } from './options.js';

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from listen(0)');
  return address.port;
}

async function failToConnect(config: PlugmqConfig): Promise<{ error: CodedError; elapsedMs: number }> {
  const started = Date.now();
  const error = await expectPlugmqError(() => createQueueManager(config), 'CONNECTION');
  return { error, elapsedMs: Date.now() - started };
}

function expectNoSecret(error: CodedError, secret: string): void {
  expect(error.message).not.toContain(secret);
  expect(String(error.stack)).not.toContain(secret);
  expect(String(error.cause ?? '')).not.toContain(secret);
}

/**
 * The first connect fails, and says why in words a user acts on: refused at host:port, host not
 * found, authentication refused, TLS handshake failed; within the connect timeout, also in a
 * process where nothing else keeps Node alive.
 */
export function connectScenarios(options: ConnectFailureOptions, ms: (value: number) => number): void {
  const timeout = options.connectTimeoutMs;
  // Start-up of a fresh node (and a bundle) on a busy 2-core machine, on top of the timeout.
  const slack = ms(10_000);

  it(
    'a closed port: CONNECTION saying "connection refused at 127.0.0.1:<port>", within the connect timeout, password masked',
    async () => {
      const port = await closedPort();
      const password = 'f1rst-c0ntact-pw';
      const { error, elapsedMs } = await failToConnect(
        options.config('127.0.0.1', port, { user: 'plugmq', password }),
      );
      expect(error.message).toContain(`connection refused at 127.0.0.1:${port}`);
      expect(elapsedMs).toBeLessThan(timeout + ms(2_000));
      expectNoSecret(error, password);
    },
    timeout + slack,
  );

  it(
    'an unknown host: CONNECTION saying "host not found" and naming the host',
    async () => {
      const { error } = await failToConnect(options.config('nonexistent.invalid', 5_000));
      expect(error.message).toMatch(/host not found: nonexistent\.invalid/);
    },
    timeout + slack,
  );

  it(
    'a refused login: CONNECTION saying "authentication refused", at once (not after the timeout), password never shown',
    async (ctx) => {
      const refused = await options.refusedLogin();
      if (typeof refused === 'string') return ctx.skip(refused);
      const { error, elapsedMs } = await failToConnect(refused.config);
      expect(error.message).toMatch(/authentication refused/);
      expect(elapsedMs).toBeLessThan(Math.min(timeout / 2, ms(3_000)));
      expectNoSecret(error, refused.password);
    },
    timeout + slack,
  );

  it(
    'TLS spoken to a plain listener: CONNECTION saying "TLS handshake failed"',
    async (ctx) => {
      if (!options.tlsMismatch) return ctx.skip('no tlsMismatch given for this driver');
      const { error } = await failToConnect(options.tlsMismatch());
      expect(error.message).toMatch(/TLS handshake failed/);
    },
    timeout + slack,
  );

  it(
    'in a process with nothing else alive, a closed port ends in CONNECTION and a non-zero exit within the timeout',
    async () => {
      const port = await closedPort();
      const run = await connectInChild(options.child, options.config('127.0.0.1', port), timeout + slack);
      expect(run.output).toContain('FAILED CONNECTION');
      expect(run.output).toContain(`connection refused at 127.0.0.1:${port}`);
      expect(run.exitCode).toBe(1);
    },
    timeout + 2 * slack,
  );
}
