import type { PlugmqConfig, PlugmqEvent, QueueManager } from '@plugmq/core';
import { expect, it } from 'vitest';
import { captureLogger } from '../capture-logger.js';
import { collector, uniqueGroup, uniqueType, waitFor, withTimeout } from '../conformance/helpers.js';
import type { FirstContactOptions } from './options.js';

/**
 * What a new user's first service does, start to finish, on one driver: connect, consume,
 * publish, request/reply between two managers (one process's requester, another's responder),
 * close. Every step is normal, so nothing may be logged at warn or error, no log field may be
 * present without a value, and every handled message (the responder's too) must count as acked.
 */
export function lifecycleScenarios(options: FirstContactOptions, ms: (value: number) => number): void {
  it(
    'a normal life cycle logs nothing at warn or error, no undefined field, and every handler outcome is acked',
    async () => {
      const logger = captureLogger();
      const managers: QueueManager[] = [];
      const open = async (overrides: Partial<PlugmqConfig> = {}) => {
        const manager = await options.create({ logger, ...overrides });
        managers.push(manager);
        return manager;
      };
      try {
        const service = await open();
        const client = await open();
        const events: PlugmqEvent[] = [];
        for (const manager of [service, client]) manager.events.on((e) => events.push(e));

        const type = uniqueType('first.order');
        const got = collector<{ n: number }>();
        await service.consume(type, got.handler, { group: uniqueGroup('first') });
        await client.publish(type, { n: 1 });
        await client.publish(type, { n: 2 });
        await got.waitForCount(2, ms(10_000));

        const rpc = uniqueType('first.price');
        await service.respond<{ sku: string }, { sku: string; cents: number }>(rpc, (message) => ({
          sku: message.body.sku,
          cents: 250,
        }));
        for (const sku of ['a', 'b', 'c']) {
          const answer = await client.request(rpc, { sku }, { timeoutMs: ms(10_000) });
          expect(answer).toEqual({ sku, cents: 250 });
        }
        const responderOutcomes = () =>
          events.filter(
            (e): e is Extract<PlugmqEvent, { kind: 'handled' }> => e.kind === 'handled' && e.type === rpc,
          );
        // The responder's handler resolves after its reply is stored, so the event may trail the reply.
        await waitFor(
          () => responderOutcomes().length >= 3,
          ms(5_000),
          'three handled events of the responder',
        );
        expect(responderOutcomes().map((e) => e.outcome)).toEqual(['acked', 'acked', 'acked']);
        expect(
          events.filter((e) => e.kind === 'dropped' || e.kind === 'dead-lettered' || e.kind === 'retried'),
        ).toEqual([]);

        for (const manager of managers.splice(0)) await withTimeout(manager.close(), ms(30_000), 'close()');
        expect(logger.complaints()).toEqual([]);
      } finally {
        await Promise.allSettled(managers.map((manager) => manager.close()));
      }
    },
    ms(60_000),
  );
}
