export {
  CLAIM_CHECK_HEADERS,
  type ClaimCheckedManager,
  type ClaimCheckOptions,
  DEFAULT_RETENTION_MS,
  DEFAULT_THRESHOLD_BYTES,
  withClaimCheck,
} from './claim-check.js';
export { type FilesystemPayloadStoreOptions, filesystemPayloadStore } from './fs-store.js';
export { type RedisPayloadClient, type RedisPayloadStoreOptions, redisPayloadStore } from './redis-store.js';
export { assertPayloadKey, type PayloadStore } from './store.js';
