import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Every container, process and data dir the testkit creates must go when the test process ends,
// pass, fail or crash. Normal runs stop them in afterAll / stopAllBrokers(); this watchdog covers
// the rest (a killed worker, an uncaught error): a detached node process that waits for this one to
// die, then removes whatever the ledger still lists. It is Ryuk's job, without an image to pull.

const WATCHDOG = `
const fs = require('node:fs'), http = require('node:http');
const [parent, ledger] = [Number(process.argv[1]), process.argv[2]];
const alive = (p) => { try { process.kill(p, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
function remove(id) {
  return new Promise((done) => {
    const host = process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
    const target = host.startsWith('unix://') ? { socketPath: host.slice(7) }
      : (() => { const u = new URL(host.replace(/^tcp:/, 'http:')); return { host: u.hostname, port: u.port }; })();
    const req = http.request({ ...target, method: 'DELETE', path: '/containers/' + id + '?force=true&v=true' },
      (res) => { res.resume(); res.on('end', done); });
    req.on('error', done);
    req.setTimeout(20000, () => { req.destroy(); done(); });
    req.end();
  });
}
async function sweep() {
  let lines = [];
  try { lines = fs.readFileSync(ledger, 'utf8').split('\\n').filter(Boolean).map((l) => JSON.parse(l)); } catch {}
  const released = new Set(lines.filter((e) => e.released).map((e) => e.released));
  for (const e of lines) {
    if (e.released || released.has(e.key)) continue;
    if (e.pgid) { try { process.kill(-e.pgid, 'SIGKILL'); } catch {} }
    if (e.container) await remove(e.container);
    if (e.dir) { try { fs.rmSync(e.dir, { recursive: true, force: true }); } catch {} }
  }
  try { fs.rmSync(ledger, { force: true }); } catch {}
}
const timer = setInterval(() => { if (!alive(parent)) { clearInterval(timer); sweep().finally(() => process.exit(0)); } }, 500);
`;

export interface LedgerEntry {
  /** Process group to SIGKILL (local brokers run in their own group). */
  pgid?: number;
  /** Container id to force-remove through DOCKER_HOST. */
  container?: string;
  /** Directory to delete. */
  dir?: string;
}

let ledger: string | undefined;
let sequence = 0;

function ensureWatchdog(): string {
  if (ledger) return ledger;
  ledger = join(tmpdir(), `plugmq-brokers-${process.pid}.jsonl`);
  const child = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), ledger], {
    detached: true,
    stdio: 'ignore',
    env: process.env,
  });
  child.unref();
  return ledger;
}

/** Records something to remove if this process dies first; returns the key to release it with. */
export function remember(entry: LedgerEntry): string {
  const path = ensureWatchdog();
  sequence += 1;
  const key = `${process.pid}-${sequence}`;
  appendFileSync(path, `${JSON.stringify({ key, ...entry })}\n`);
  return key;
}

/** The thing was removed normally: the watchdog must leave it alone. */
export function release(key: string): void {
  if (ledger) appendFileSync(ledger, `${JSON.stringify({ released: key })}\n`);
}
