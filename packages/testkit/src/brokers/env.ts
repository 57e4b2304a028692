import { existsSync } from 'node:fs';
import { BROKER_KINDS, type BrokerKind } from './types.js';
import { LOCAL_IMAGES } from './versions.js';

/** Where `pnpm brokers:images` serves podman's Docker-compatible API (`PLUGMQ_PODMAN_SOCKET` moves it). */
export const PLUGMQ_PODMAN_SOCKET = '/run/plugmq-podman.sock';
const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export function urlVariable(kind: BrokerKind): string {
  return `PLUGMQ_${kind.toUpperCase()}_URL`;
}

export function imageVariable(kind: BrokerKind): string {
  return `PLUGMQ_${kind.toUpperCase()}_IMAGE`;
}

/** A non-empty `PLUGMQ_<KIND>_URL`, if set. */
export function urlFromEnv(kind: BrokerKind, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[urlVariable(kind)]?.trim();
  return value ? value : undefined;
}

/** The podman socket tools/brokers serves (the same variable as tools/brokers/lib.sh). */
export function podmanSocket(env: NodeJS.ProcessEnv = process.env): string {
  return env.PLUGMQ_PODMAN_SOCKET?.trim() || PLUGMQ_PODMAN_SOCKET;
}

export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}

/**
 * On our machines podman stands in for Docker, and testcontainers needs three settings for it:
 * the socket, no Ryuk reaper (its image cannot be pulled; the testkit removes what it starts) and
 * loopback as the host for mapped ports. When no Docker socket exists but PlugMQ's podman socket
 * does, fill in whatever the user did not set, including the locally built images (the official
 * ones cannot be pulled there). Explicit settings always win.
 */
export function applyContainerDefaults(env: NodeJS.ProcessEnv = process.env): void {
  const socket = podmanSocket(env);
  const podmanHost = `unix://${socket}`;
  if (!env.DOCKER_HOST && !existsSync(DEFAULT_DOCKER_SOCKET) && existsSync(socket)) {
    env.DOCKER_HOST = podmanHost;
  }
  if (env.DOCKER_HOST !== podmanHost) return;
  env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
  for (const kind of BROKER_KINDS) env[imageVariable(kind)] ??= LOCAL_IMAGES[kind];
}
