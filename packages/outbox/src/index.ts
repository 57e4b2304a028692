export {
  createOutbox,
  encodeBody,
  Outbox,
  type OutboxOptions,
  type OutboxPublishOptions,
} from './outbox.js';
export { OutboxRelay, type RelayClient, type RelayOptions, type RelayStats } from './relay.js';
export type { Queryable, TableNames } from './sql.js';
