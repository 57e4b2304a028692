import { fileURLToPath } from 'node:url';
import { runFaultSuite } from '@plugmq/testkit';
import { Redis } from 'ioredis';
import { driver, typeKeys } from '../../src/index.js';

const keyPrefix = 'faults';

runFaultSuite({
  name: 'redis',
  kind: 'redis',
  driver,
  // Short claim timings: a killed consumer's pending entries are claimed within seconds.
  config: (url) => ({ driver: 'redis', url, keyPrefix, claimMinIdleMs: 1_000, claimIntervalMs: 200 }),
  driverModule: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
  coreEntry: fileURLToPath(new URL('../../../core/src/index.ts', import.meta.url)),
  async injectMalformed(url, type) {
    const raw = new Redis(url);
    // PlugMQ's fields, but a body that is not the JSON its content type claims.
    await raw.xadd(
      typeKeys(keyPrefix, type).stream,
      '*',
      'x-plugmq-id',
      'bad-json',
      'x-plugmq-content-type',
      'application/json',
      'x-plugmq-body',
      '{oops',
    );
    return {
      async error() {
        const entries = await raw.xrange(typeKeys(keyPrefix, `${type}.dlq`).stream, '-', '+');
        // The dead-letter copy's `x-plugmq-id` is `<timestamp>:<id>`, as in every entry the driver writes.
        const fields = entries
          .map(([, list]) => list)
          .find((list) => list[list.indexOf('x-plugmq-id') + 1]?.endsWith(':bad-json'));
        return fields?.[fields.indexOf('x-plugmq-error') + 1];
      },
      async close() {
        raw.disconnect();
      },
    };
  },
});
