import type { Command } from 'commander';
import { type ConnectionOptions, connect } from '../connect.js';
import { header, intRange, messageType, nonNegativeInt, parseBody, positiveInt } from '../parse.js';

interface PublishFlags extends ConnectionOptions {
  header?: Record<string, string>;
  key?: string;
  id?: string;
  delay?: number;
  priority?: number;
  count: number;
  raw?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function publishCommand(program: Command): void {
  program
    .command('publish')
    .description('Publish a message (JSON, or text) to a message type and print its id.')
    .argument('<type>', 'message type, e.g. orders.created', messageType)
    .argument('[body]', 'the body: JSON, else taken as a string; "-" or absent reads standard input')
    .option('-H, --header <name=value>', 'a header (repeatable)', header)
    .option('-k, --key <key>', 'ordering key')
    .option('--id <id>', 'message id (default: generated)')
    .option('--delay <ms>', 'deliver no sooner than this many ms from now', nonNegativeInt('--delay'))
    .option(
      '--priority <0-9>',
      'priority, higher first (drivers that support it)',
      intRange('--priority', 0, 9),
    )
    .option('-n, --count <n>', 'publish the message n times', positiveInt('--count'), 1)
    .option('--raw', 'send the body as raw bytes (UTF-8 text) instead of JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  plugmq publish orders.created \'{"orderId":"A-17"}\' -H tenant=t1 -k customer-9\n  echo \'{"n":1}\' | PLUGMQ_DRIVER=redis plugmq publish orders.created',
    )
    .action(async (type: string, bodyArg: string | undefined, _flags: PublishFlags, command: Command) => {
      const flags = command.optsWithGlobals<PublishFlags>();
      const text = bodyArg === undefined || bodyArg === '-' ? await readStdin() : bodyArg;
      const body = flags.raw ? new TextEncoder().encode(text) : parseBody(text.trim());
      const queue = await connect(flags);
      if (queue.driver === 'memory') {
        process.stderr.write(
          'note: the memory driver is in-process; nothing outside this command sees the message\n',
        );
      }
      try {
        for (let i = 0; i < flags.count; i++) {
          const id = await queue.publish(type, body, {
            ...(flags.header ? { headers: flags.header } : {}),
            ...(flags.key ? { key: flags.key } : {}),
            ...(flags.id && flags.count === 1 ? { id: flags.id } : {}),
            ...(flags.delay ? { delayMs: flags.delay } : {}),
            ...(flags.priority === undefined ? {} : { priority: flags.priority }),
          });
          process.stdout.write(`${id}\n`);
        }
      } finally {
        await queue.close();
      }
    });
}
