import { fileURLToPath } from 'node:url';
import { runFaultSuite, startLocalPostgres } from '@plugmq/testkit';
import pg from 'pg';
import { driver, tables } from '../../src/index.js';

const schema = 'faults';
const { groups, deliveries } = tables(schema);

runFaultSuite({
  name: 'postgres',
  driver,
  // A local server the suite owns, restarts and kills (not PLUGMQ_POSTGRES_URL's).
  async startServer() {
    const server = await startLocalPostgres();
    const { restart, kill } = server;
    if (!restart || !kill) throw new Error('the local PostgreSQL handle cannot restart or kill');
    return { ...server, kind: 'postgres', restart, kill };
  },
  // A short lease: a killed consumer's rows come back within seconds.
  config: (url) => ({ driver: 'postgres', url, schema, leaseMs: 2_000, pollMs: 200 }),
  driverModule: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
  coreEntry: fileURLToPath(new URL('../../../core/src/index.ts', import.meta.url)),
  async injectMalformed(url, type) {
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    // The dead letter read off the table, as an operator's tool would: a group of our own on <type>.dlq.
    const probe = `probe-${process.pid}`;
    await raw.query(`INSERT INTO ${groups} (type, grp) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
      `${type}.dlq`,
      probe,
    ]);
    // PlugMQ's headers, but a body that is not the JSON its content type claims.
    const headers = { 'x-plugmq-id': 'bad-json', 'x-plugmq-content-type': 'application/json' };
    await raw.query(
      `INSERT INTO ${deliveries} (grp, type, headers, body) SELECT grp, type, $2, $3 FROM ${groups} WHERE type = $1`,
      [type, JSON.stringify(headers), Buffer.from('{oops')],
    );
    return {
      async error() {
        const found = await raw.query<{ error: string }>(
          `SELECT headers->>'x-plugmq-error' AS error FROM ${deliveries} WHERE grp = $1 AND headers->>'x-plugmq-id' LIKE '%bad-json'`,
          [probe],
        );
        return found.rows[0]?.error ?? undefined;
      },
      async close() {
        await raw.end();
      },
    };
  },
});
