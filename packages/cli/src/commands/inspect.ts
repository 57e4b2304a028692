import type { Inspection, InspectQuery, QueueManager } from '@plugmq/core';
import { type Command, InvalidArgumentError } from 'commander';
import { type ConnectionOptions, connect, untilSignal } from '../connect.js';
import { messageType, positiveInt } from '../parse.js';

interface InspectFlags extends ConnectionOptions {
  json?: boolean;
  watch?: number | true;
  count?: number;
  group?: { type: string; group: string }[];
}

const DEFAULT_WATCH_SECONDS = 2;

/** `850ms`, `12s`, `3m04s`, `2h05m`; '-' where the broker cannot tell. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${pad(Math.floor(seconds / 60) % 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${pad(Math.floor(seconds / 3600) % 24)}h`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[], numeric: number): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i >= numeric ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const key = (type: string, group: string) => `${type}\u0000${group}`;

/**
 * The inspection as two tables. `previous` (watch mode) adds how each backlog moved since the
 * last refresh, which is what tells a stuck group from a busy one.
 */
export function formatInspection(inspection: Inspection, previous?: Inspection): string {
  const before = new Map(previous?.groups.map((g) => [key(g.type, g.group), g.backlog]));
  const count = (n: number | undefined) => (n === undefined ? '-' : String(n));
  const groups = inspection.groups.map((g) => {
    const last = before.get(key(g.type, g.group));
    const delta =
      last === undefined || last === g.backlog ? '' : ` (${g.backlog > last ? '+' : ''}${g.backlog - last})`;
    const partitions = g.partitions?.length
      ? `  lag ${g.partitions.map((p) => `p${p.partition}=${p.lag}`).join(' ')}`
      : '';
    return [
      g.type,
      g.group,
      `${g.backlog}${delta}`,
      count(g.inFlight),
      formatAge(g.oldestWaitingMs),
      g.consumers === 0 ? '0 (none!)' : count(g.consumers),
      `${count(g.retryBacklog)}${partitions}`,
    ];
  });
  const parts = [
    `${inspection.driver} at ${new Date(inspection.takenAt).toISOString()}`,
    groups.length
      ? table(['TYPE', 'GROUP', 'BACKLOG', 'IN FLIGHT', 'OLDEST', 'CONSUMERS', 'RETRY BACKLOG'], groups, 2)
      : '(no groups)',
  ];
  if (inspection.deadLetters.length) {
    const rows = inspection.deadLetters.map((d) => [d.type, String(d.count), formatAge(d.oldestAgeMs)]);
    parts.push(table(['DEAD-LETTER TYPE', 'COUNT', 'OLDEST'], rows, 1));
  } else parts.push('(no dead letters at rest)');
  return `${parts.join('\n\n')}\n`;
}

function typeGroup(raw: string, previous: { type: string; group: string }[] = []) {
  const at = raw.indexOf(':');
  if (at < 1 || at === raw.length - 1)
    throw new InvalidArgumentError('--group must look like type:group (e.g. orders.created:billing).');
  return [...previous, { type: messageType(raw.slice(0, at)), group: raw.slice(at + 1) }];
}

function watchSeconds(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0.1 || value > 3600)
    throw new InvalidArgumentError('--watch must be a number of seconds from 0.1 to 3600.');
  return value;
}

async function watch(queue: QueueManager, query: InspectQuery, flags: InspectFlags): Promise<void> {
  const seconds = flags.watch === true || flags.watch === undefined ? DEFAULT_WATCH_SECONDS : flags.watch;
  const clear = process.stdout.isTTY && !flags.json;
  let stopped = false;
  let wake: () => void = () => {};
  void untilSignal().then(() => {
    stopped = true;
    wake();
  });
  let previous: Inspection | undefined;
  for (let refresh = 1; !stopped; refresh++) {
    const inspection = await queue.inspect(query);
    if (flags.json) process.stdout.write(`${JSON.stringify(inspection)}\n`);
    else {
      const header = `every ${seconds} s (Ctrl-C to stop)\n`;
      process.stdout.write(
        `${clear ? '\x1b[2J\x1b[H' : ''}${header}${formatInspection(inspection, previous)}\n`,
      );
    }
    previous = inspection;
    if (flags.count !== undefined && refresh >= flags.count) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

export function inspectCommand(program: Command): void {
  program
    .command('inspect')
    .description(
      'What the broker holds: backlog, in flight, oldest waiting message, consumers and retry backlog per (type, group), then dead letters at rest per dead-letter type.',
    )
    .argument(
      '[types...]',
      'only these message types (default: every type the broker knows)',
      (raw, list: string[] = []) => [...list, messageType(raw)],
    )
    .option('--json', 'print the Inspection object as JSON (one line per refresh with --watch)')
    .option(
      '-w, --watch [seconds]',
      `refresh every n seconds until Ctrl-C (default ${DEFAULT_WATCH_SECONDS})`,
      watchSeconds,
    )
    .option('-n, --count <n>', 'with --watch: stop after n refreshes', positiveInt('--count'))
    .option(
      '-g, --group <type:group>',
      'also look up this pair where the broker cannot list groups (RabbitMQ without its management API); repeatable',
      typeGroup,
    )
    .addHelpText(
      'after',
      '\nWith --watch each backlog shows how it moved since the last refresh, e.g. "120 (+40)"; a group with no consumers shows "0 (none!)".',
    )
    .action(async (types: string[], _flags: InspectFlags, command: Command) => {
      const flags = command.optsWithGlobals<InspectFlags>();
      const query: InspectQuery = {
        ...(types.length ? { types } : {}),
        ...(flags.group?.length ? { groups: flags.group } : {}),
      };
      const queue = await connect(flags);
      try {
        if (flags.watch !== undefined) return await watch(queue, query, flags);
        const inspection = await queue.inspect(query);
        process.stdout.write(
          flags.json ? `${JSON.stringify(inspection, null, 2)}\n` : formatInspection(inspection),
        );
      } finally {
        await queue.close();
      }
    });
}
