import { canStartRedisCluster } from '@plugmq/testkit';

/**
 * Whether a loopback Redis Cluster can start here (redis-server and redis-cli on PATH; `pnpm
 * brokers:up redis` installs them). Under CI=true their absence fails the test file instead.
 */
export async function redisClusterAvailable(): Promise<boolean> {
  const available = await canStartRedisCluster();
  if (!available && process.env.CI === 'true') {
    throw new Error(
      'redis-server/redis-cli are not installed: cannot start the loopback Redis Cluster under CI',
    );
  }
  return available;
}
