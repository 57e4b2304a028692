import { isPlugmqError } from '@plugmq/core';
import { Command, CommanderError } from 'commander';
import { benchCommand } from './commands/bench.js';
import { dashboardCommand } from './commands/dashboard.js';
import { demoCommand } from './commands/demo.js';
import { dlqCommand } from './commands/dlq.js';
import { inspectCommand } from './commands/inspect.js';
import { publishCommand } from './commands/publish.js';
import { tailCommand } from './commands/tail.js';

/** Usage errors (unknown flag, bad value, missing argument) exit with 2, like most Unix tools. */
export const USAGE_EXIT_CODE = 2;

/**
 * What PlugMQ refuses because of what was typed (a bad type, a priority out of range, an unknown
 * driver or option): usage errors too, found only once the driver looked at them.
 */
const USAGE_CODES = ['INVALID_ARGUMENT', 'CONFIG_INVALID', 'DRIVER_NOT_FOUND', 'UNSUPPORTED'] as const;

export interface CliOutput {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

export function buildProgram(output?: CliOutput): Command {
  const program = new Command('plugmq')
    .description(
      'PlugMQ from the command line: publish, tail, inspect, dead letters, benchmarks, the demo and the dashboard.\nThe broker comes from PLUGMQ_DRIVER / PLUGMQ_URL (memory by default) or --driver / --url.',
    )
    .version('0.1.0')
    .option(
      '--driver <driver>',
      'memory | rabbitmq | redis | kafka | postgres (default: PLUGMQ_DRIVER or memory)',
    )
    .option('--url <url>', 'broker URL (default: PLUGMQ_URL or the driver default)')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  publishCommand(program);
  tailCommand(program);
  inspectCommand(program);
  dlqCommand(program);
  benchCommand(program);
  demoCommand(program);
  dashboardCommand(program);
  // Settings are copied to subcommands only when they are created from a configured parent,
  // so apply the usage-error behaviour to each one explicitly.
  const configure = (command: Command) => {
    command.exitOverride().showHelpAfterError('(add --help for usage)');
    if (output) command.configureOutput(output);
    command.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  if (output) program.configureOutput(output);
  return program;
}

/** Runs the CLI; resolves with the exit code (0 ok, 1 failure, 2 usage error). */
export async function runCli(argv: readonly string[], output?: CliOutput): Promise<number> {
  const program = buildProgram(output);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
    const usage = USAGE_CODES.some((code) => isPlugmqError(error, code));
    const text = `plugmq: ${error instanceof Error ? error.message : String(error)}\n${usage ? '(add --help for usage)\n' : ''}`;
    if (output) output.writeErr(text);
    else process.stderr.write(text);
    return usage ? USAGE_EXIT_CODE : 1;
  }
}
