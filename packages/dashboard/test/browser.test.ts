import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Locator } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flakyConsumer, type Running, startDashboard, until } from './helpers.js';

// Debian's chromium (tools/ci/install-chromium.sh), never a downloaded browser build.
const executablePath = process.env.PLUGMQ_CHROMIUM ?? '/usr/bin/chromium';
const present = existsSync(executablePath);
const inCi = process.env.CI === 'true';
const artefacts = fileURLToPath(new URL('../test-results/', import.meta.url));

if (!present && !inCi) {
  console.warn(
    `dashboard browser test skipped: no chromium at ${executablePath} (run tools/ci/install-chromium.sh)`,
  );
}

/** Waits until the element's text contains `expected` (the page updates a few times a second). */
async function contains(locator: Locator, expected: string | RegExp): Promise<void> {
  await until(async () => {
    const text = (await locator.textContent()) ?? '';
    return typeof expected === 'string' ? text.includes(expected) : expected.test(text);
  }).catch(async () => {
    throw new Error(`expected ${String(expected)} in: ${await locator.textContent()}`);
  });
}

describe.skipIf(!present && !inCi)('dashboard in headless Chromium', () => {
  let browser: Browser;
  let running: Running;

  beforeAll(async () => {
    if (!present)
      throw new Error(`CI=true but no chromium at ${executablePath}: run tools/ci/install-chromium.sh`);
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    running = await startDashboard({ intervalMs: 250, inspectIntervalMs: 200 });
  });
  afterAll(async () => {
    await browser?.close();
    await running?.close();
  });

  it('shows live numbers, then replays a dead letter from the page and the handler gets it', async () => {
    const { queue, url } = running;
    const payments = await flakyConsumer(queue, 'web.payments');
    await queue.consume('web.orders', () => new Promise((resolve) => setTimeout(resolve, 2)), {
      group: 'fulfilment',
      concurrency: 4,
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(url);
    await page.getByTestId('live').filter({ hasText: 'live' }).waitFor({ timeout: 5000 });
    const number = async (testId: string) =>
      Number((await page.getByTestId(testId).textContent())?.replace(/,/g, ''));
    expect(await number('published-total')).toBe(0);

    // Rates move after messages are published.
    const publishing = (async () => {
      for (let i = 0; i < 60; i++) {
        await queue.publish('web.orders', { order: i });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await until(async () => (await number('publish-rate')) > 0);
    await publishing;
    await until(async () => (await number('published-total')) === 60);
    await until(async () => (await number('handled-total')) === 60);
    await contains(page.locator('#groups'), 'fulfilment');

    // A payment fails twice and is dead-lettered; the page lists it.
    await queue.publish('web.payments', { amount: 99 }, { headers: { tenant: 't9' } });
    await until(async () => (await number('dead-lettered-total')) === 1);
    await page.getByTestId('dlq-web.payments.dlq').click();
    const row = page.getByTestId('dead-letter-row');
    await row.first().waitFor();
    await contains(row.first(), 'payment provider down');
    await row.first().locator('summary').click();
    await contains(row.first(), '"amount": 99');
    await contains(row.first(), '"tenant": "t9"');
    mkdirSync(artefacts, { recursive: true });
    await page.screenshot({ path: `${artefacts}dashboard.png`, fullPage: true });

    // The provider is back: replay from the page; the original consumer now handles it.
    payments.fixed = true;
    await row.first().getByRole('button', { name: 'Replay' }).click();
    await until(() => payments.handled.length === 1);
    expect(payments.handled[0]).toEqual({ amount: 99 });
    await contains(page.locator('#toast'), 'replayed 1');
    await contains(page.getByTestId('dlq-web.payments.dlq'), /web\.payments\.dlq\s*0\s*1\s*1/);
    await page.screenshot({ path: `${artefacts}dashboard-after-replay.png`, fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('the fleet view shows a growing backlog and a group without consumers', async () => {
    const { queue, url } = running;
    let holding = true;
    const waiting: (() => void)[] = [];
    await queue.consume('web.jobs', () => (holding ? new Promise<void>((r) => waiting.push(r)) : undefined), {
      group: 'stuck',
    });
    await (await queue.consume('web.jobs', () => {}, { group: 'abandoned' })).close();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const publisher = setInterval(() => void queue.publish('web.jobs', { at: Date.now() }), 40);
    try {
      await page.goto(url);
      await contains(page.getByTestId('fleet-web.jobs/stuck'), /growing \(\+\d+\)/);
      const abandoned = page.getByTestId('fleet-web.jobs/abandoned');
      await contains(abandoned, 'no consumers');
      expect(await abandoned.getAttribute('class')).toContain('bad');
      await contains(page.getByTestId('fleet-dlq-web.jobs.dlq'), 'web.jobs.dlq');
      mkdirSync(artefacts, { recursive: true });
      await page.getByTestId('fleet').screenshot({ path: `${artefacts}dashboard-fleet.png` });
      expect(pageErrors).toEqual([]);
    } finally {
      clearInterval(publisher);
      holding = false;
      for (const release of waiting) release();
      await page.close();
    }
  });
});
