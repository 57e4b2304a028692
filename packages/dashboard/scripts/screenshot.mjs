#!/usr/bin/env node
// Takes docs/dashboard.png: the demo workload with the dashboard, in headless Chromium (Debian's
// chromium, PLUGMQ_CHROMIUM to override). Needs a build (pnpm build). Usage:
//   node packages/dashboard/scripts/screenshot.mjs [output.png] [seconds of traffic, default 15]
import { fileURLToPath } from 'node:url';
import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { chromium } from 'playwright-core';
import { startDemoWorkload } from '../../cli/dist/index.js';
import { createDashboard } from '../dist/index.js';

const output = process.argv[2] ?? fileURLToPath(new URL('../../../docs/dashboard.png', import.meta.url));
const seconds = Number(process.argv[3] ?? 15);
registerDriver(memoryDriver);
const queue = await createQueueManager({ driver: 'memory' });
const dashboard = await createDashboard({ queue });
const workload = await startDemoWorkload(queue, { rate: 60, run: 'docs' });
const { url } = await dashboard.listen(0);
const browser = await chromium.launch({
  executablePath: process.env.PLUGMQ_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
await page.goto(url);
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
await page.getByTestId('dlq-demo.payments.dlq').click();
await page.getByTestId('dead-letter-row').first().locator('summary').click();
await page.evaluate(() => window.scrollTo(0, 0));
await new Promise((resolve) => setTimeout(resolve, 500));
// The top of the page down to the first dead letters: cards, chart, tables and one open record.
await page.screenshot({ path: output, fullPage: true, clip: { x: 0, y: 0, width: 1400, height: 1480 } });
console.log(`wrote ${output}`);
await browser.close();
await workload.stop();
await dashboard.close();
await queue.close();
