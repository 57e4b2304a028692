import type { Message } from '@plugmq/core';
import { type Command, Option } from 'commander';
import { type ConnectionOptions, connect, untilSignal } from '../connect.js';
import { positiveInt } from '../parse.js';

interface TailFlags extends ConnectionOptions {
  group?: string;
  from: 'latest' | 'earliest';
  count?: number;
  json?: boolean;
  for?: number;
  concurrency: number;
}

/** One line per message: time, type, id, attempt, key, headers, body. */
export function formatMessage(message: Message<unknown>, json: boolean): string {
  const body = message.body instanceof Uint8Array ? Buffer.from(message.body).toString('utf8') : message.body;
  if (json) return JSON.stringify({ ...message, body });
  const time = new Date(message.timestamp).toISOString().slice(11, 23);
  const key = message.key === undefined ? '' : ` key=${message.key}`;
  const headers = Object.keys(message.headers).length ? ` headers=${JSON.stringify(message.headers)}` : '';
  return `${time} ${message.type} ${message.id} attempt=${message.attempt}${key}${headers} ${JSON.stringify(body)}`;
}

export function tailCommand(program: Command): void {
  program
    .command('tail')
    .description('Consume messages of one or more types and print them (acknowledging each) until stopped.')
    .argument('<types...>', 'message types to consume')
    .option(
      '-g, --group <group>',
      'consumer group (default: a fresh plugmq.tail.<pid> group, so no one else is robbed)',
    )
    .addOption(
      new Option('--from <where>', 'where a new group starts')
        .choices(['latest', 'earliest'])
        .default('latest'),
    )
    .option('-n, --count <n>', 'exit after n messages', positiveInt('--count'))
    .option('--for <ms>', 'exit after this many milliseconds', positiveInt('--for'))
    .option('--json', 'print one JSON object per message')
    .option('-c, --concurrency <n>', 'handlers in flight', positiveInt('--concurrency'), 1)
    .addHelpText(
      'after',
      '\nWith --group naming an application group, tail competes with that group and takes its messages: use a fresh group to watch.',
    )
    .action(async (types: string[], _flags: TailFlags, command: Command) => {
      const flags = command.optsWithGlobals<TailFlags>();
      const queue = await connect(flags);
      let seen = 0;
      let finish: () => void = () => {};
      const done = new Promise<void>((resolve) => {
        finish = resolve;
      });
      await queue.consume(
        types,
        (message) => {
          if (flags.count !== undefined && seen >= flags.count) return;
          seen++;
          process.stdout.write(`${formatMessage(message, flags.json === true)}\n`);
          if (flags.count !== undefined && seen >= flags.count) finish();
        },
        {
          group: flags.group ?? `plugmq.tail.${process.pid}`,
          startFrom: flags.from,
          concurrency: flags.concurrency,
        },
      );
      process.stderr.write(`tailing ${types.join(', ')} on ${queue.driver} (Ctrl-C to stop)\n`);
      const timer = flags.for ? setTimeout(finish, flags.for) : undefined;
      await Promise.race([done, untilSignal()]);
      clearTimeout(timer);
      await queue.close();
    });
}
