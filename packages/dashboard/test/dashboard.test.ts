import { afterEach, describe, expect, it } from 'vitest';
import type { DeadLetterRecord } from '../src/index.js';
import { flakyConsumer, type Running, startDashboard, until } from './helpers.js';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const getJson = async <T>(url: string): Promise<T> => (await fetch(url)).json() as Promise<T>;
const post = (url: string, body: unknown, contentType = 'application/json') =>
  fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: JSON.stringify(body) });

interface Stats {
  totals: { published: number; acked: number; deadLettered: number };
  types: { type: string; published: number; publishRate: number }[];
  groups: { type: string; group: string; failed: number; retried: number }[];
  consumers: { group: string }[];
  deadLetters: { type: string; stored: number }[];
}

describe('@plugmq/dashboard HTTP API', () => {
  it('serves the page, live stats, /metrics, and browses then replays dead letters', async () => {
    running = await startDashboard();
    const { queue, url } = running;
    const payments = await flakyConsumer(queue, 'dash.payments');
    await queue.consume('dash.orders', () => {}, { group: 'fulfilment' });

    const page = await fetch(url);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('data-testid="published-total"');

    for (let i = 0; i < 5; i++) await queue.publish('dash.orders', { order: i });
    await queue.publish('dash.payments', { amount: 42 }, { key: 'customer-1', headers: { tenant: 't1' } });
    await queue.publish('dash.payments', { amount: 7 });

    const stats = await until(async () => {
      const s = await getJson<Stats>(`${url}api/stats`);
      return s.deadLetters.find((d) => d.type === 'dash.payments.dlq')?.stored === 2 ? s : undefined;
    });
    expect(stats.totals.published).toBe(7);
    expect(stats.types.find((t) => t.type === 'dash.orders')?.published).toBe(5);
    expect(stats.groups.find((g) => g.group === 'payments')).toMatchObject({ failed: 4, retried: 2 });
    // The dashboard's own dead-letter reader is not shown as an application consumer.
    expect(stats.consumers.map((c) => c.group).sort()).toEqual(['fulfilment', 'payments']);

    const records = await getJson<DeadLetterRecord[]>(`${url}api/dead-letters/dash.payments.dlq`);
    expect(records).toHaveLength(2);
    const first = records.find((r) => (r.body as { amount: number }).amount === 42);
    expect(first).toMatchObject({
      originalType: 'dash.payments',
      error: expect.stringContaining('payment provider down'),
      attempts: 2,
      key: 'customer-1',
      headers: expect.objectContaining({ tenant: 't1' }),
    });

    const metrics = await (await fetch(`${url}metrics`)).text();
    expect(metrics).toContain('plugmq_messages_published_total{driver="memory",type="dash.orders"} 5');

    // Replay one, then the rest, once the handler is fixed; replayed messages are handled.
    payments.fixed = true;
    const one = await post(`${url}api/dead-letters/dash.payments.dlq/replay`, { id: first?.id });
    expect(await one.json()).toEqual({ replayed: 1 });
    await until(() => payments.handled.length === 1);
    expect(payments.handled[0]).toEqual({ amount: 42 });
    const all = await post(`${url}api/dead-letters/dash.payments.dlq/replay`, {});
    expect(await all.json()).toEqual({ replayed: 1 });
    await until(() => payments.handled.length === 2);
    const after = await getJson<Stats>(`${url}api/stats`);
    expect(after.deadLetters.find((d) => d.type === 'dash.payments.dlq')).toMatchObject({
      stored: 0,
      replayed: 2,
    });
    expect((await post(`${url}api/dead-letters/dash.payments.dlq/replay`, { id: 'nope' })).status).toBe(404);
  });

  it('pushes snapshots as server-sent events', async () => {
    running = await startDashboard();
    const response = await fetch(`${running.url}api/events`);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body?.getReader();
    if (!reader) throw new Error('no body');
    await running.queue.publish('dash.sse', {});
    let text = '';
    while ((text.match(/event: stats/g) ?? []).length < 2) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    const frames = text.split('\n\n').filter((f) => f.includes('data: '));
    const last = JSON.parse(frames.at(-1)?.split('data: ')[1] ?? '{}') as Stats;
    expect(last.totals.published).toBe(1);
  });

  it('refuses replays that are not JSON (CSRF guard) or on a read-only dashboard, and unknown paths', async () => {
    running = await startDashboard({ readOnly: true });
    expect((await post(`${running.url}api/dead-letters/x.dlq/replay`, {})).status).toBe(403);
    await running.close();
    running = await startDashboard();
    expect((await post(`${running.url}api/dead-letters/x.dlq/replay`, {}, 'text/plain')).status).toBe(415);
    expect((await fetch(`${running.url}nope`)).status).toBe(404);
    expect((await fetch(`${running.url}api/health`)).status).toBe(200);
  });

  it('mounts under a base path on an existing server', async () => {
    running = await startDashboard({ basePath: '/ops/plugmq' });
    expect(running.url).toMatch(/\/ops\/plugmq\/$/);
    const redirect = await fetch(running.url.slice(0, -1), { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect((await fetch(`${running.url}api/stats`)).status).toBe(200);
    expect((await fetch(running.url.replace('/ops/plugmq/', '/api/stats'))).status).toBe(404);
  });
});
