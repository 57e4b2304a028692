import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, type QueueManager, silentLogger } from '@plugmq/core';
import { createPlugmqMetrics, type PlugmqMetrics } from '@plugmq/metrics';
import { Registry } from 'prom-client';
import { DeadLetterStore } from './dead-letters.js';
import { FleetView } from './fleet.js';
import { createHealthProbes, type HealthProbeOptions, type HealthProbes } from './health.js';
import { dashboardPage } from './page.js';
import { LiveStats } from './stats.js';

export interface DashboardOptions {
  readonly queue: QueueManager;
  /**
   * Metrics served at `metrics`. Default: a PlugmqMetrics on a registry of its own, observing
   * `queue`. Pass yours (already observing) to serve your registry; `false` turns `/metrics` off.
   */
  readonly metrics?: PlugmqMetrics | false;
  /** Dead-letter types to read from the start, beside those learned from consumers and events. */
  readonly deadLetterTypes?: readonly string[];
  /** Dead-letter records kept per type (default 500). */
  readonly maxDeadLettersPerType?: number;
  /** The dashboard's own consumer group for reading dead letters (default 'plugmq.dashboard'). */
  readonly group?: string;
  /** Refuse replays (HTTP 403): a browse-only dashboard. */
  readonly readOnly?: boolean;
  /** Prefix when mounted on a plain node:http server at a sub-path, e.g. '/plugmq'. */
  readonly basePath?: string;
  /**
   * How often the fleet view polls `queue.inspect()` (default 2000 ms; one poll per interval
   * whatever the number of browsers); `false` turns the fleet view and `/api/inspect` off.
   */
  readonly inspectIntervalMs?: number | false;
  /** Settings of the `/livez` and `/readyz` probes. */
  readonly probes?: HealthProbeOptions;
  /** How often live updates are pushed (default 1000 ms). */
  readonly intervalMs?: number;
  readonly title?: string;
  readonly logger?: Logger;
}

export interface Dashboard {
  /** Mount in any node:http server (or Express/Connect: `app.use('/plugmq', dashboard.handler)`). */
  readonly handler: (request: IncomingMessage, response: ServerResponse, next?: () => void) => void;
  /** Starts a server of its own; resolves with its URL once listening. */
  listen(port: number, host?: string): Promise<{ url: string; port: number; server: Server }>;
  readonly stats: LiveStats;
  readonly deadLetters: DeadLetterStore;
  readonly metrics: PlugmqMetrics | undefined;
  /** The broker-side view behind `/api/inspect` (undefined with `inspectIntervalMs: false`). */
  readonly fleet: FleetView | undefined;
  /** The `/livez` and `/readyz` probes (also served by `handler`). */
  readonly probes: HealthProbes;
  /** Stops timers, live streams, its dead-letter readers and its own server (not the queue). */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

/**
 * The dashboard for one QueueManager: live per type/group numbers from core's events, dead-letter
 * browsing and replay, Prometheus text, and server-sent events that push a snapshot every second.
 */
export async function createDashboard(options: DashboardOptions): Promise<Dashboard> {
  const queue = options.queue;
  const logger = options.logger ?? silentLogger;
  const deadLetters = new DeadLetterStore(queue, {
    ...(options.group ? { group: options.group } : {}),
    ...(options.maxDeadLettersPerType ? { maxPerType: options.maxDeadLettersPerType } : {}),
    logger,
  });
  const stats = new LiveStats(new Set([deadLetters.group]));
  const metrics =
    options.metrics === false
      ? undefined
      : (options.metrics ?? createPlugmqMetrics({ registry: new Registry() }));
  const unsubscribe = [queue.events.on(stats.record), queue.events.on(deadLetters.record)];
  if (metrics && options.metrics === undefined) unsubscribe.push(metrics.observe(queue));
  await Promise.all([
    deadLetters.watchExisting(),
    ...(options.deadLetterTypes ?? []).map((t) => deadLetters.watch(t)),
  ]);

  const inspectIntervalMs = options.inspectIntervalMs ?? 2000;
  const fleet =
    inspectIntervalMs === false
      ? undefined
      : new FleetView(queue, inspectIntervalMs, logger, new Set([deadLetters.group]), () =>
          queue
            .subscriptionInfo()
            .filter((info) => info.group !== deadLetters.group)
            .flatMap((info) => info.types.map((type) => ({ type, group: info.group }))),
        );
  await fleet?.start();
  const fleetSnapshot = () =>
    fleet?.snapshot() ?? {
      supported: false,
      reason: 'the fleet view is turned off (inspectIntervalMs: false)',
      groups: [],
      deadLetters: [],
    };
  const probes = createHealthProbes(queue, options.probes);

  const intervalMs = options.intervalMs ?? 1000;
  const streams = new Set<ServerResponse>();
  const startedAt = Date.now();
  const snapshot = () => ({
    at: Date.now(),
    uptimeMs: Date.now() - startedAt,
    driver: queue.driver,
    ...stats.snapshot(),
    series: stats.series.slice(-60),
    consumers: queue.subscriptionInfo().filter((info) => info.group !== deadLetters.group),
    deadLetters: deadLetters.summaries(),
    fleet: fleetSnapshot(),
    readOnly: options.readOnly === true,
  });
  stats.tick();
  const timer = setInterval(() => {
    stats.tick();
    if (streams.size === 0) return;
    const frame = `event: stats\ndata: ${JSON.stringify(snapshot())}\n\n`;
    for (const stream of streams) stream.write(frame);
  }, intervalMs);
  timer.unref();

  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const page = dashboardPage(options.title ?? 'PlugMQ dashboard');
  let ownServer: Server | undefined;

  async function route(request: IncomingMessage, response: ServerResponse, next?: () => void): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    let path = url.pathname;
    if (basePath) {
      if (path === basePath) return redirect(response, `${basePath}/`);
      if (!path.startsWith(`${basePath}/`)) return notFound(response, next);
      path = path.slice(basePath.length);
    }
    // Mounted by Express at '/x' and opened as '/x': relative links need the trailing slash.
    const original = (request as { originalUrl?: string }).originalUrl;
    if (path === '/' && original && !original.split('?')[0]?.endsWith('/'))
      return redirect(response, `${original}/`);
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/') return send(response, 200, 'text/html; charset=utf-8', page);
    if (method === 'GET' && path === '/api/stats') return json(response, 200, snapshot());
    if (method === 'GET' && path === '/api/health') return json(response, 200, await queue.health());
    if (method === 'GET' && path === '/api/events') return openStream(request, response);
    if (method === 'GET' && path === '/api/inspect') return json(response, 200, fleetSnapshot());
    if (path === '/livez' || path === '/readyz') return probes.handler(request, response, next);
    if (method === 'GET' && path === '/metrics') {
      if (!metrics) return notFound(response, next);
      return send(response, 200, metrics.contentType, await metrics.text());
    }
    if (method === 'GET' && path === '/api/dead-letters') return json(response, 200, deadLetters.summaries());
    const dlq = /^\/api\/dead-letters\/([A-Za-z0-9._-]{1,200})(\/replay)?$/.exec(path);
    if (dlq && method === 'GET' && !dlq[2]) {
      const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 200) || 200));
      return json(response, 200, deadLetters.list(dlq[1] as string, limit));
    }
    if (dlq && method === 'POST' && dlq[2]) return replay(request, response, dlq[1] as string);
    return notFound(response, next);
  }

  async function replay(request: IncomingMessage, response: ServerResponse, type: string): Promise<void> {
    if (options.readOnly) return json(response, 403, { error: 'this dashboard is read-only' });
    // A JSON content type cannot be sent by a plain cross-site form: a cheap guard against CSRF.
    if (!(request.headers['content-type'] ?? '').startsWith('application/json')) {
      return json(response, 415, { error: 'send the replay request as application/json' });
    }
    const body = await readJson(request);
    if (body === undefined)
      return json(response, 400, { error: 'the body must be JSON: {} or { "id": "…" }' });
    const id = (body as { id?: unknown }).id;
    if (id !== undefined && typeof id !== 'string')
      return json(response, 400, { error: 'id must be a string' });
    if (id === undefined) return json(response, 200, { replayed: await deadLetters.replayAll(type) });
    const replayed = await deadLetters.replay(type, id);
    return json(
      response,
      replayed ? 200 : 404,
      replayed ? { replayed: 1 } : { error: `no replayable dead letter ${id} in ${type}` },
    );
  }

  function openStream(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.write(`retry: 2000\nevent: stats\ndata: ${JSON.stringify(snapshot())}\n\n`);
    streams.add(response);
    request.on('close', () => streams.delete(response));
  }

  const handler = (request: IncomingMessage, response: ServerResponse, next?: () => void): void => {
    route(request, response, next).catch((error: unknown) => {
      logger.warn({ err: String(error), url: request.url }, 'plugmq dashboard: request failed');
      if (!response.headersSent)
        json(response, 500, { error: error instanceof Error ? error.message : String(error) });
      else response.end();
    });
  };

  return {
    handler,
    stats,
    deadLetters,
    metrics,
    fleet,
    probes,
    async listen(port, host = '127.0.0.1') {
      const server = createServer((request, response) => handler(request, response));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      ownServer = server;
      const address = server.address() as AddressInfo;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      return { url: `http://${shownHost}:${address.port}${basePath}/`, port: address.port, server };
    },
    async close() {
      clearInterval(timer);
      fleet?.stop();
      await probes.close();
      for (const stop of unsubscribe) stop();
      for (const stream of streams) stream.end();
      streams.clear();
      await deadLetters.close();
      if (ownServer) {
        const server = ownServer;
        ownServer = undefined;
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(body);
}

function json(response: ServerResponse, status: number, value: unknown): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function redirect(response: ServerResponse, location: string): void {
  response.writeHead(308, { location });
  response.end();
}

function notFound(response: ServerResponse, next?: () => void): void {
  if (next) next();
  else json(response, 404, { error: 'not found' });
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
