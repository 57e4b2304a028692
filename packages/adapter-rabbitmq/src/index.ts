import { defineTransportDriver } from '@plugmq/core/driver';
import {
  capabilities,
  capabilitiesFor,
  DEFAULT_URL,
  defaultPrefetch,
  OPTIONS,
  type QueueType,
  type RabbitMqConfig,
  type RabbitMqTlsOptions,
  validateRabbitMqConfig,
} from './options.js';
import { RabbitMqTransport } from './transport.js';

/** The RabbitMQ driver: `createQueueManager({ driver: 'rabbitmq', url: 'amqp://…' })`. */
export const driver = defineTransportDriver<RabbitMqConfig>({
  name: 'rabbitmq',
  capabilities,
  options: OPTIONS,
  capabilitiesFor,
  validate: validateRabbitMqConfig,
  createTransport: (config, { logger, hooks }) => RabbitMqTransport.create(config, logger, hooks),
});

export { MAX_PARTITIONS, PARTITION_HEADER, partitionOfKey, partitionQueueName } from './partitions.js';
export { groupQueueArguments, groupQueueName, topologyFor, waitQueueName } from './topology.js';
export { capabilities, capabilitiesFor, DEFAULT_URL, defaultPrefetch };
export type { QueueType, RabbitMqConfig, RabbitMqTlsOptions };
