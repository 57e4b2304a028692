import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type HealthReport, PlugmqError, type QueueManager } from '@plugmq/core';

export interface HealthProbeOptions {
  /** Liveness fails while the event loop lags more than this (default 5000 ms). */
  readonly maxEventLoopDelayMs?: number;
  /** Readiness fails when `queue.health()` takes longer than this (default 3000 ms). */
  readonly healthTimeoutMs?: number;
}

export interface ProbeResult {
  readonly ok: boolean;
  /** What failed, in words (empty when ok). */
  readonly reasons: readonly string[];
  /** Readiness: the manager's health report, when it answered. */
  readonly health?: HealthReport;
  /** Liveness: the event loop's lag at the last tick. */
  readonly eventLoopDelayMs?: number;
}

export interface HealthProbes {
  /** The process can go on: the manager is not closed and the event loop is responsive. */
  live(): ProbeResult;
  /** Traffic may come: the broker answers health() and every subscription is live. */
  ready(): Promise<ProbeResult>;
  /**
   * Serves `GET /livez` and `GET /readyz` (200 or 503, a JSON ProbeResult); anything else goes to
   * `next` or gets a 404. Mount it in any node:http server or Express.
   */
  readonly handler: (request: IncomingMessage, response: ServerResponse, next?: () => void) => void;
  /** A server of its own, for a probe port apart from the application's. */
  listen(port: number, host?: string): Promise<{ url: string; port: number; server: Server }>;
  /** Stops the event-loop ticker and its own server (not the queue). */
  close(): Promise<void>;
}

const TICK_MS = 500;

/**
 * Liveness and readiness for orchestrators (Kubernetes probes, load balancers). Liveness never
 * calls the broker: a broker outage must make the pod unready, not get it restarted.
 */
export function createHealthProbes(queue: QueueManager, options: HealthProbeOptions = {}): HealthProbes {
  const maxDelay = options.maxEventLoopDelayMs ?? 5000;
  const timeoutMs = options.healthTimeoutMs ?? 3000;
  if (!(maxDelay > 0) || !(timeoutMs > 0))
    throw new PlugmqError('INVALID_ARGUMENT', 'maxEventLoopDelayMs and healthTimeoutMs must be positive');
  // A ticker's drift is the lag the loop had; a loop blocked outright cannot answer the probe at all.
  let expected = Date.now() + TICK_MS;
  let delay = 0;
  const ticker = setInterval(() => {
    const now = Date.now();
    delay = Math.max(0, now - expected);
    expected = now + TICK_MS;
  }, TICK_MS);
  ticker.unref();
  let server: Server | undefined;

  const live = (): ProbeResult => {
    const reasons: string[] = [];
    if ((queue as { closed?: boolean }).closed === true) reasons.push('the queue manager is closed');
    if (delay > maxDelay) reasons.push(`the event loop lags ${delay} ms (limit ${maxDelay} ms)`);
    return { ok: reasons.length === 0, reasons, eventLoopDelayMs: delay };
  };

  const ready = async (): Promise<ProbeResult> => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    let health: HealthReport | undefined;
    try {
      health = await Promise.race([queue.health(), timedOut]);
    } catch (error) {
      return {
        ok: false,
        reasons: [`health() failed: ${error instanceof Error ? error.message : String(error)}`],
      };
    } finally {
      clearTimeout(timer);
    }
    if (health === undefined) return { ok: false, reasons: [`health() took over ${timeoutMs} ms`] };
    const reasons: string[] = [];
    const details = health.details ?? {};
    if (details.closed === true) reasons.push('the queue manager is closed');
    else if (!health.ok) reasons.push(`the ${health.driver} broker is not healthy`);
    const notLive = Array.isArray(details.notLive)
      ? (details.notLive as { group: string; types: string[]; state: string }[])
      : [];
    for (const s of notLive) reasons.push(`subscription ${s.group} (${s.types.join(', ')}) is ${s.state}`);
    return { ok: reasons.length === 0, reasons, health };
  };

  const handler = (request: IncomingMessage, response: ServerResponse, next?: () => void): void => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const method = request.method ?? 'GET';
    if ((method === 'GET' || method === 'HEAD') && path.endsWith('/livez')) {
      reply(response, live());
      return;
    }
    if ((method === 'GET' || method === 'HEAD') && path.endsWith('/readyz')) {
      ready().then(
        (result) => reply(response, result),
        (error: unknown) => reply(response, { ok: false, reasons: [String(error)] }),
      );
      return;
    }
    if (next) {
      next();
      return;
    }
    response.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
    response.end(JSON.stringify({ error: 'not found: try /livez or /readyz' }));
  };

  return {
    live,
    ready,
    handler,
    async listen(port, host = '0.0.0.0') {
      const own = createServer((request, response) => handler(request, response));
      await new Promise<void>((resolve, reject) => {
        own.once('error', reject);
        own.listen(port, host, () => resolve());
      });
      server = own;
      const address = own.address() as AddressInfo;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      return { url: `http://${shownHost}:${address.port}/`, port: address.port, server: own };
    },
    async close() {
      clearInterval(ticker);
      const own = server;
      server = undefined;
      if (own) {
        own.closeAllConnections();
        await new Promise<void>((resolve) => own.close(() => resolve()));
      }
    },
  };
}

function reply(response: ServerResponse, result: ProbeResult): void {
  response.writeHead(result.ok ? 200 : 503, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  response.end(JSON.stringify({ status: result.ok ? 'ok' : 'failing', ...result }));
}
