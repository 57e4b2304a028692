import {
  DEAD_LETTER_HEADERS,
  type DeadLetterRecord,
  isPlugmqError,
  type Message,
  PlugmqError,
  type QueueManager,
} from '@plugmq/core';
import type { Command } from 'commander';
import { type ConnectionOptions, connect } from '../connect.js';
import { intRange, positiveInt } from '../parse.js';
import { formatAge } from './inspect.js';
import { formatMessage } from './tail.js';

interface DlqFlags extends ConnectionOptions {
  dashboard?: string;
  wait: number;
  json?: boolean;
  group?: string;
  limit?: number;
}

/**
 * Runs `atRest` (dead letters kept in the broker's reserved group, read and removed through
 * `queue.deadLetters`); a driver that cannot keep them answers UNSUPPORTED and `fallback` runs.
 */
async function atRestOr<T>(atRest: () => Promise<T>, fallback: () => Promise<T>): Promise<T> {
  try {
    return await atRest();
  } catch (error) {
    if (isPlugmqError(error, 'UNSUPPORTED')) return fallback();
    throw error;
  }
}

/** A record as the drain path printed messages: dead-letter headers among the headers. */
function recordLine(record: DeadLetterRecord, json: boolean): string {
  const headers: Record<string, string> = { ...record.headers };
  if (record.originalType !== undefined) headers[DEAD_LETTER_HEADERS.originalType] = record.originalType;
  if (record.error !== undefined) headers[DEAD_LETTER_HEADERS.error] = record.error;
  if (record.attempts !== undefined) headers[DEAD_LETTER_HEADERS.attempts] = String(record.attempts);
  if (json) return JSON.stringify({ ...record, headers });
  const time = new Date(record.timestamp).toISOString();
  const key = record.key === undefined ? '' : ` key=${record.key}`;
  const body = record.body instanceof Uint8Array ? Buffer.from(record.body).toString('utf8') : record.body;
  return `${time} ${record.id} from=${record.originalType ?? '?'} attempts=${record.attempts ?? '?'}${key} error=${JSON.stringify(record.error ?? '')} headers=${JSON.stringify(headers)} ${JSON.stringify(body)}`;
}

const DLQ_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(DEAD_LETTER_HEADERS));

/** Talks to a running dashboard's HTTP API (works for every driver, the memory driver included). */
async function api(base: string, path: string, init?: RequestInit): Promise<unknown> {
  const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  const response = await fetch(url, init);
  const body = (await response.json()) as { error?: string };
  if (!response.ok) throw new Error(`${url.href}: ${response.status} ${body.error ?? ''}`);
  return body;
}

/**
 * Reads a dead-letter type directly from the broker for `waitMs` of quiet: through `group`, which
 * must be fresh (starting from 'earliest') to see what is already there without taking it from
 * anyone; only drivers whose new groups receive old messages can do that.
 */
async function drain(
  queue: QueueManager,
  type: string,
  group: string,
  waitMs: number,
  onMessage: (message: Message<unknown>) => Promise<void> | void,
): Promise<number> {
  let last = Date.now();
  let count = 0;
  const subscription = await queue.consume(
    type,
    async (message) => {
      last = Date.now();
      count++;
      await onMessage(message);
    },
    // Reading dead letters must not create dead letters of dead letters.
    { group, startFrom: 'earliest', concurrency: 1, deadLetter: false },
  );
  while (Date.now() - last < waitMs) await new Promise((resolve) => setTimeout(resolve, 50));
  await subscription.close();
  return count;
}

function requireHistory(queue: QueueManager): void {
  if (!queue.capabilities.newGroupReceivesOldMessages) {
    throw new Error(
      `the ${queue.driver} driver cannot show a new group messages published before it existed; use --dashboard <url> of a running dashboard, which keeps dead letters as they arrive`,
    );
  }
}

export function dlqCommand(program: Command): void {
  const dlq = program
    .command('dlq')
    .description(
      'List and replay dead-lettered messages (directly from the broker, or through a running dashboard).',
    );
  const common = (command: Command) =>
    command
      .option(
        '--dashboard <url>',
        'use a running plugmq dashboard (e.g. http://127.0.0.1:4545/) instead of the broker',
      )
      .option(
        '--wait <ms>',
        'direct mode: stop after this many ms without a message',
        positiveInt('--wait'),
        2000,
      );

  common(
    dlq
      .command('list')
      .description(
        'List dead-letter types with their counts, or the dead letters of one type (oldest first).',
      )
      .argument('[type]', 'dead-letter type, e.g. orders.created.dlq')
      .option('--json', 'print JSON')
      .option(
        '--limit <n>',
        'at most this many dead letters (1 to 1000; default 1000)',
        intRange('--limit', 1, 1000),
      ),
  ).action(async (type: string | undefined, _flags: DlqFlags, command: Command) => {
    const flags = command.optsWithGlobals<DlqFlags>();
    if (flags.dashboard) {
      const result = await api(
        flags.dashboard,
        type
          ? `api/dead-letters/${encodeURIComponent(type)}${flags.limit ? `?limit=${flags.limit}` : ''}`
          : 'api/dead-letters',
      );
      if (flags.json || !Array.isArray(result)) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else
        console.table(
          result.map((row) =>
            type
              ? {
                  id: row.id,
                  originalType: row.originalType,
                  error: row.error,
                  attempts: row.attempts,
                  at: new Date(row.timestamp).toISOString(),
                  body: JSON.stringify(row.body).slice(0, 60),
                }
              : row,
          ),
        );
      return;
    }
    const queue = await connect(flags);
    try {
      if (!type) {
        const inspection = await atRestOr(
          () => queue.inspect(),
          () => {
            throw new PlugmqError(
              'UNSUPPORTED',
              `the ${queue.driver} driver cannot list dead-letter types; name the dead-letter type to list (or use --dashboard <url> to list types)`,
            );
          },
        );
        const rows = inspection.deadLetters.map((d) => ({
          type: d.type,
          count: d.count,
          oldestAgeMs: d.oldestAgeMs,
        }));
        if (flags.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else
          for (const row of rows)
            process.stdout.write(`${row.type}  ${row.count}  oldest ${formatAge(row.oldestAgeMs)}\n`);
        if (rows.length === 0) process.stderr.write('no dead letters at rest\n');
        return;
      }
      const count = await atRestOr(
        async () => {
          const records = await queue.deadLetters.browse(type, { limit: flags.limit ?? 1000 });
          for (const record of records) process.stdout.write(`${recordLine(record, flags.json === true)}\n`);
          return records.length;
        },
        () => {
          requireHistory(queue);
          return drain(queue, type, `plugmq.cli.list.${Date.now().toString(36)}`, flags.wait, (message) => {
            process.stdout.write(`${formatMessage(message, flags.json === true)}\n`);
          });
        },
      );
      process.stderr.write(`${count} dead letters in ${type}\n`);
    } finally {
      await queue.close();
    }
  });

  common(
    dlq
      .command('replay')
      .description('Republish dead-lettered messages to their original type (x-plugmq-original-type).')
      .argument('<type>', 'dead-letter type, e.g. orders.created.dlq')
      .argument('[ids...]', 'only these message ids (default: all)')
      .option(
        '-g, --group <group>',
        'direct mode: the group that reads the dead-letter type; it remembers what was replayed',
        'plugmq.replay',
      )
      .option('--limit <n>', 'replay at most this many, oldest first', positiveInt('--limit')),
  ).action(async (type: string, ids: string[], _flags: DlqFlags, command: Command) => {
    const flags = command.optsWithGlobals<DlqFlags>();
    if (flags.dashboard) {
      const replay = (id?: string) =>
        api(flags.dashboard as string, `api/dead-letters/${encodeURIComponent(type)}/replay`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(id ? { id } : {}),
        }) as Promise<{ replayed: number }>;
      let replayed = 0;
      if (ids.length === 0) replayed = (await replay()).replayed;
      else for (const id of ids) replayed += (await replay(id)).replayed;
      process.stdout.write(`replayed ${replayed} from ${type}\n`);
      return;
    }
    const queue = await connect(flags);
    try {
      // Ids and a chosen group need the old path: the broker's dead letters cannot be picked by id.
      const drainOnly = ids.length > 0 || command.getOptionValueSource('group') === 'cli';
      const replayed = await atRestOr(
        async () => {
          if (drainOnly) throw new PlugmqError('UNSUPPORTED', 'replay by id reads through a group');
          const count = await queue.deadLetters.replay(
            type,
            flags.limit === undefined ? {} : { limit: flags.limit },
          );
          process.stdout.write(`replayed ${count} from ${type} to their original types\n`);
          return count;
        },
        () => replayByDraining(queue, type, ids, flags),
      );
      if (drainOnly || replayed === 0) process.stderr.write(`replayed ${replayed} from ${type}\n`);
    } finally {
      await queue.close();
    }
  });
}

/** The way before dead letters were kept at rest: read the type through a group, republish. */
async function replayByDraining(
  queue: QueueManager,
  type: string,
  ids: readonly string[],
  flags: DlqFlags,
): Promise<number> {
  requireHistory(queue);
  const wanted = new Set(ids);
  let replayed = 0;
  await drain(queue, type, flags.group ?? 'plugmq.replay', flags.wait, async (message) => {
    const original = message.headers[DEAD_LETTER_HEADERS.originalType];
    if (!original || (wanted.size > 0 && !wanted.has(message.id))) return;
    if (flags.limit !== undefined && replayed >= flags.limit) return;
    const headers = Object.fromEntries(
      Object.entries(message.headers).filter(([name]) => !DLQ_HEADER_NAMES.has(name)),
    );
    await queue.publish(original, message.body, {
      id: message.id,
      headers: { ...headers, 'x-plugmq-replayed-from': type },
      ...(message.key === undefined ? {} : { key: message.key }),
    });
    replayed++;
    process.stdout.write(`replayed ${message.id} to ${original}\n`);
  });
  return replayed;
}
