import { defineTransportDriver } from '@plugmq/core/driver';
import { capabilities, type MemoryConfig, OPTIONS, validateMemoryConfig } from './options.js';
import { MemoryTransport } from './transport.js';

/** The in-process reference driver: `createQueueManager({ driver: 'memory' })`. */
export const driver = defineTransportDriver<MemoryConfig>({
  name: 'memory',
  capabilities,
  options: OPTIONS,
  validate: validateMemoryConfig,
  createTransport: async (config, { logger, hooks }) => new MemoryTransport(config, logger, hooks),
});

export { capabilities };
export type { MemoryConfig };
