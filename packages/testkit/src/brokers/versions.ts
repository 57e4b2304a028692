import type { BrokerKind } from './types.js';

// Mirrors tools/brokers/versions.env (a test keeps the two in step). Hard-coded here because the
// published testkit cannot read the repository's tools folder.

/** What a Docker user pulls: the default when `PLUGMQ_<KIND>_IMAGE` is unset. */
export const OFFICIAL_IMAGES: Readonly<Record<BrokerKind, string>> = {
  redis: 'redis:7.0',
  rabbitmq: 'rabbitmq:3.10-management',
  kafka: 'apache/kafka:3.9.1',
};

/** What `pnpm brokers:images` builds with podman where no registry is reachable. */
export const LOCAL_IMAGES: Readonly<Record<BrokerKind, string>> = {
  redis: 'plugmq/redis:7.0-local',
  rabbitmq: 'plugmq/rabbitmq:3.10-local',
  kafka: 'plugmq/kafka:3.9.2-local',
};

/** Kafka version of the Maven jars the local-process source runs. */
export const KAFKA_VERSION = '3.9.2';
