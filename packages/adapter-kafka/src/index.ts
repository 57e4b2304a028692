import { defineTransportDriver } from '@plugmq/core/driver';
import { capabilities, capabilitiesFor, type KafkaConfig, OPTIONS, validateKafkaConfig } from './options.js';
import { loadPlatformaticClient } from './platformatic-client.js';
import { KafkaTransport } from './transport.js';

/** The Kafka driver: `createQueueManager({ driver: 'kafka', url: 'kafka://127.0.0.1:9092' })`. */
export const driver = defineTransportDriver<KafkaConfig>({
  name: 'kafka',
  capabilities,
  capabilitiesFor,
  options: OPTIONS,
  validate: validateKafkaConfig,
  createTransport: async (config, { logger }) => {
    const client =
      config.client === 'platformatic' ? await loadPlatformaticClient(config, logger) : undefined;
    const transport = new KafkaTransport(config, logger, client);
    try {
      await transport.connect();
    } catch (error) {
      await transport.close().catch(() => {});
      throw error;
    }
    return transport;
  },
});

export { capabilities };
export type { KafkaClient } from './connection.js';
export type { KafkaConfig };
