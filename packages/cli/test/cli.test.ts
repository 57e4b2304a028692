import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { createQueueManager, registerDriver } from '@plugmq/core';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../src/index.js';

beforeAll(() => registerDriver(memoryDriver));
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs the CLI in this process (against the sources), capturing what it prints. */
async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk);
    return true;
  });
  const code = await runCli(argv, {
    writeOut: (text) => {
      out += text;
    },
    writeErr: (text) => {
      err += text;
    },
  });
  vi.restoreAllMocks();
  return { code, out, err };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const COMMANDS = ['publish', 'tail', 'inspect', 'dlq', 'bench', 'demo', 'dashboard'];

describe('plugmq CLI', () => {
  it('--help lists every command; each command has its own --help saying what it does', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    for (const name of COMMANDS) expect(top.out).toMatch(new RegExp(`^  ${name} `, 'm'));
    for (const name of [...COMMANDS, 'dlq list', 'dlq replay']) {
      const help = await cli(...name.split(' '), '--help');
      expect(help.code, name).toBe(0);
      expect(help.out).toContain(`Usage: plugmq ${name}`);
      expect(help.out.split('\n')[2]?.length, `${name} has a description`).toBeGreaterThan(20);
    }
  });

  it('bad flags, bad values and missing arguments are usage errors: a clear message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['publish', 'x', '{}', '--bogus'], /unknown option '--bogus'/],
      [['tail', 'x', '--count', '0'], /--count must be a positive integer/],
      [['tail', 'x', '--from', 'yesterday'], /Allowed choices are latest, earliest/],
      [['publish'], /missing required argument 'type'/],
      [['bench', '--driver', 'nope'], /--driver must be one of memory, rabbitmq, redis, kafka, postgres/],
      [['demo', '--dashboard', 'http'], /port must be an integer/],
      [['publish', 'x', '1', '-H', 'novalue'], /header must look like name=value/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['inspect', '--watch', '0'], /--watch must be a number of seconds/],
      [['inspect', '-g', 'nogroup'], /--group must look like type:group/],
      [['dlq', 'list', 'x.dlq', '--limit', '5000'], /--limit must be an integer from 1 to 1000/],
      [['publish', 'x', '1', '--priority', '42'], /--priority must be an integer from 0 to 9/],
      [['publish', 'orders created', '1'], /value 'orders created' .*invalid.*a message type is letters/],
      [['--driver', 'rabbit', 'publish', 'x', '1'], /driver "rabbit".*did you mean "rabbitmq"\?/],
      [['--driver', 'memory', 'tail', 'bad type', '--count', '1'], /types\[0\] must be a non-empty string/],
      [['--driver', 'kafka', 'publish', 'x', '1', '--url', 'http://nope'], /url must (be|use)/],
    ];
    for (const [argv, message] of cases) {
      const result = await cli(...argv);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.err, argv.join(' ')).toMatch(message);
    }
  });

  it('publish and tail move messages (memory driver, one process), with headers and key', async () => {
    const tail = cli('tail', 'cli.orders', '--count', '2', '--for', '5000', '--json');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const queue = await createQueueManager({ driver: 'memory' });
    await queue.publish('cli.orders', { order: 1 }, { key: 'c-1', headers: { tenant: 't1' } });
    await queue.publish('cli.orders', 'plain text');
    const result = await tail;
    await queue.close();
    expect(result.code).toBe(0);
    const lines = result.out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((m) => m.body)).toEqual([{ order: 1 }, 'plain text']);
    expect(lines[0]).toMatchObject({ type: 'cli.orders', key: 'c-1', headers: { tenant: 't1' }, attempt: 1 });

    const published = await cli('publish', 'cli.none', '{"a":1}', '-H', 'x=1', '-n', '2');
    expect(published.code).toBe(0);
    expect(published.out.trim().split('\n')).toHaveLength(2);
    expect(published.err).toContain('memory driver is in-process');
  });

  it('dlq list and replay use the dead letters at rest (queue.deadLetters); ids still go through a group', async () => {
    const queue = await createQueueManager({ driver: 'memory' });
    let fixed = false;
    const handled: unknown[] = [];
    await queue.consume(
      'cli.pay',
      (message) => {
        if (!fixed) throw new Error('declined');
        handled.push(message.body);
      },
      { group: 'pay', retry: { maxAttempts: 1 } },
    );
    await queue.publish('cli.pay', { amount: 5 });
    await queue.publish('cli.pay', { amount: 6 });
    await vi.waitFor(async () => expect((await queue.deadLetters.browse('cli.pay.dlq')).length).toBe(2));
    const types = await cli('dlq', 'list', '--json');
    expect(types.code).toBe(0);
    expect(JSON.parse(types.out)).toContainEqual(expect.objectContaining({ type: 'cli.pay.dlq', count: 2 }));
    const listed = await cli('dlq', 'list', 'cli.pay.dlq', '--json');
    expect(listed.code).toBe(0);
    const lines = listed.out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((line) => line.body)).toEqual([{ amount: 5 }, { amount: 6 }]);
    // Scripts written against the drain path read the dead-letter headers: they are still there.
    expect(lines[0]).toMatchObject({
      originalType: 'cli.pay',
      headers: { 'x-plugmq-original-type': 'cli.pay' },
    });
    expect(listed.err).toContain('2 dead letters in cli.pay.dlq');
    fixed = true;
    const one = await cli('dlq', 'replay', 'cli.pay.dlq', '--limit', '1');
    expect(one.code).toBe(0);
    expect(one.out).toContain('replayed 1 from cli.pay.dlq');
    await vi.waitFor(() => expect(handled).toEqual([{ amount: 5 }]));
    expect(await queue.deadLetters.browse('cli.pay.dlq')).toHaveLength(1);
    const byId = await cli('dlq', 'replay', 'cli.pay.dlq', lines[1].id, '--wait', '200');
    expect(byId.code).toBe(0);
    expect(byId.out).toMatch(/replayed .* to cli\.pay/);
    await vi.waitFor(() => expect(handled).toEqual([{ amount: 5 }, { amount: 6 }]));
    await queue.close();
  });

  it('inspect prints backlog per group and dead letters; --json is the Inspection; --watch refreshes', async () => {
    const queue = await createQueueManager({ driver: 'memory' });
    const release: (() => void)[] = [];
    let holding = true;
    await queue.consume(
      'cli.jobs',
      () => (holding ? new Promise<void>((resolve) => release.push(resolve)) : undefined),
      {
        group: 'workers',
      },
    );
    await queue.consume('cli.jobs', () => {}, { group: 'audit' });
    for (let i = 0; i < 4; i++) await queue.publish('cli.jobs', { i });
    await vi.waitFor(() => expect(release.length).toBe(1));

    const text = await cli('inspect', 'cli.jobs');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/TYPE\s+GROUP\s+BACKLOG\s+IN FLIGHT\s+OLDEST\s+CONSUMERS\s+RETRY BACKLOG/);
    expect(text.out).toMatch(/cli\.jobs\s+workers\s+3\s+1\s/);
    expect(text.out).toContain('(no dead letters at rest)');
    const all = await cli('inspect');
    // The by-id replay above went through a group: its copy at rest stays (see the README).
    expect(all.out).toMatch(/DEAD-LETTER TYPE\s+COUNT\s+OLDEST\n(.*\n)*cli\.pay\.dlq\s+1\s/);
    expect(all.out).not.toContain('cli.pay.dlq.dlq');

    const json = await cli('inspect', 'cli.jobs', '--json');
    const inspection = JSON.parse(json.out);
    expect(inspection.driver).toBe('memory');
    expect(inspection.groups).toContainEqual(
      expect.objectContaining({ type: 'cli.jobs', group: 'workers', backlog: 3, inFlight: 1, consumers: 1 }),
    );

    const publishing = setTimeout(() => void queue.publish('cli.jobs', { i: 9 }), 150);
    const watched = await cli('inspect', 'cli.jobs', '--watch', '0.3', '--count', '2');
    clearTimeout(publishing);
    expect(watched.code).toBe(0);
    expect(watched.out.match(/every 0\.3 s/g)).toHaveLength(2);
    expect(watched.out).toMatch(/workers\s+4 \(\+1\)/);

    const ndjson = await cli('inspect', '--json', '--watch', '0.1', '--count', '2');
    expect(
      ndjson.out
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).driver),
    ).toEqual(['memory', 'memory']);
    holding = false;
    for (const done of release) done();
    await queue.close();
  });

  it('demo --dashboard serves the page and /metrics, and plugmq_messages_published_total grows', async () => {
    const port = await freePort();
    const demo = cli('demo', '--dashboard', String(port), '--rate', '200', '--duration', '3');
    const base = `http://127.0.0.1:${port}/`;
    const published = async () => {
      const text = await (await fetch(`${base}metrics`)).text();
      return [...text.matchAll(/^plugmq_messages_published_total\{[^}]*\} (\d+)/gm)].reduce(
        (sum, match) => sum + Number(match[1]),
        0,
      );
    };
    const first = await vi.waitFor(
      async () => {
        const value = await published();
        expect(value).toBeGreaterThan(0);
        return value;
      },
      { timeout: 3000, interval: 100 },
    );
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await published()).toBeGreaterThan(first);
    expect(await (await fetch(base)).text()).toContain('<title>PlugMQ dashboard</title>');
    const result = await demo;
    expect(result.code).toBe(0);
    expect(result.err).toContain(`dashboard: ${base}`);
  });

  const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
  it.skipIf(!existsSync(bin))('the built binary exits 0 on --help and 2 on a bad flag', () => {
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: plugmq');
    const bad = spawnSync(process.execPath, [bin, 'tail', '--nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown option '--nope'");
  });

  it.skipIf(!existsSync(bin))(
    'an unreachable broker is exit code 1 with the password masked (the command waits for the driver)',
    () => {
      const result = spawnSync(
        process.execPath,
        [bin, 'publish', 'x', '1', '--driver', 'rabbitmq', '--url', 'amqp://user:s3cret@127.0.0.1:1'],
        { encoding: 'utf8', env: { ...process.env, PLUGMQ_CONNECT_TIMEOUT_MS: '300' }, timeout: 15_000 },
      );
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/^plugmq: .*user:\*\*\*@127\.0\.0\.1:1/m);
      expect(result.stderr).not.toContain('s3cret');
    },
  );
});
