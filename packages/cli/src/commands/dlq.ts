import { DEAD_LETTER_HEADERS, type Message, type QueueManager } from '@plugmq/core';
import type { Command } from 'commander';
import { type ConnectionOptions, connect } from '../connect.js';
import { positiveInt } from '../parse.js';
import { formatMessage } from './tail.js';

interface DlqFlags extends ConnectionOptions {
  dashboard?: string;
  wait: number;
  json?: boolean;
  group?: string;
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
    { group, startFrom: 'earliest', concurrency: 1 },
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
      .description('List dead-letter types (dashboard) or the messages of one dead-letter type.')
      .argument('[type]', 'dead-letter type, e.g. orders.created.dlq')
      .option('--json', 'print JSON'),
  ).action(async (type: string | undefined, _flags: DlqFlags, command: Command) => {
    const flags = command.optsWithGlobals<DlqFlags>();
    if (flags.dashboard) {
      const result = await api(
        flags.dashboard,
        type ? `api/dead-letters/${encodeURIComponent(type)}` : 'api/dead-letters',
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
    if (!type)
      return command.error('name the dead-letter type to list (or use --dashboard <url> to list types)', {
        exitCode: 2,
      });
    const queue = await connect(flags);
    try {
      requireHistory(queue);
      const count = await drain(
        queue,
        type,
        `plugmq.cli.list.${Date.now().toString(36)}`,
        flags.wait,
        (message) => {
          process.stdout.write(`${formatMessage(message, flags.json === true)}\n`);
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
      ),
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
      requireHistory(queue);
      const wanted = new Set(ids);
      let replayed = 0;
      await drain(queue, type, flags.group ?? 'plugmq.replay', flags.wait, async (message) => {
        const original = message.headers[DEAD_LETTER_HEADERS.originalType];
        if (!original || (wanted.size > 0 && !wanted.has(message.id))) return;
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
      process.stderr.write(`replayed ${replayed} from ${type}\n`);
    } finally {
      await queue.close();
    }
  });
}
