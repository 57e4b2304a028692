export { applyContainerDefaults, imageVariable, PLUGMQ_PODMAN_SOCKET, urlVariable } from './env.js';
export {
  localPostgresProblem,
  type PostgresHandle,
  postgresBinDir,
  postgresUnavailable,
  postgresUrlFromEnv,
  startLocalPostgres,
  startPostgres,
} from './postgres.js';
export { kafkaBrokers, probeBroker, waitUntilServes } from './probe.js';
export { proxyRoute } from './proxy-route.js';
export { stopAllBrokers } from './registry.js';
export {
  type Availability,
  BrokerUnavailableError,
  brokerAvailability,
  brokersRequired,
  brokerUnavailable,
  startBroker,
} from './start.js';
export {
  BROKER_KINDS,
  type BrokerHandle,
  type BrokerKind,
  type BrokerSource,
  type ProxiedListener,
  type StartBrokerOptions,
} from './types.js';
export { KAFKA_VERSION, LOCAL_IMAGES, OFFICIAL_IMAGES } from './versions.js';
export { describeWithBroker, skipUnlessCI } from './vitest.js';
