import { createQueueManager, type PlugmqConfig } from '@plugmq/core';
import { faultLogger } from './fault-logger.js';

/** What the parent tells the child consumer (argv[2], JSON). */
export interface ChildConsumerArgs {
  readonly config: PlugmqConfig;
  readonly type: string;
  readonly group: string;
  readonly concurrency: number;
  /** Each handler takes this long, so the parent can kill the child with handlers in flight. */
  readonly handleMs: number;
  readonly startFrom?: 'earliest' | 'latest';
}

/** Messages the child sends to its parent over IPC. */
export type ChildReport = { ready: true } | { started: string } | { done: string };

/**
 * The child side of the SIGKILL scenario: a consumer of one group that reports each message it
 * starts and each it finishes. `done` is sent before the handler returns (so before the ack), so
 * the parent never believes a message unfinished that the broker already has as acked.
 * The driver must be registered before this runs (the bundled entry does that).
 */
export async function runChildConsumer(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ChildConsumerArgs;
  const logger = faultLogger();
  const manager = await createQueueManager({ ...args.config, ...(logger ? { logger } : {}) });
  const send = (report: ChildReport) => process.send?.(report);
  await manager.consume<unknown>(
    args.type,
    async (message) => {
      send({ started: message.id });
      await new Promise((resolve) => setTimeout(resolve, args.handleMs));
      send({ done: message.id });
    },
    args.startFrom
      ? { group: args.group, concurrency: args.concurrency, startFrom: args.startFrom }
      : { group: args.group, concurrency: args.concurrency },
  );
  send({ ready: true });
}
