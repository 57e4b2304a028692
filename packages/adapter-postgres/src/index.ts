import { defineTransportDriver } from '@plugmq/core/driver';
import {
  capabilities,
  capabilitiesFor,
  DEFAULT_URL,
  OPTIONS,
  type PostgresConfig,
  validatePostgresConfig,
} from './options.js';
import { PostgresTransport } from './transport.js';

/** The PostgreSQL driver: `createQueueManager({ driver: 'postgres', url: 'postgres://…' })`. */
export const driver = defineTransportDriver<PostgresConfig>({
  name: 'postgres',
  capabilities,
  capabilitiesFor,
  options: OPTIONS,
  validate: validatePostgresConfig,
  createTransport: (config, { logger, hooks }) => PostgresTransport.create(config, logger, hooks),
});

export { tables } from './topology.js';
export { capabilities, DEFAULT_URL, PostgresTransport };
export type { PostgresConfig };
