import { connect } from 'node:net';
import { redactCredentials } from './url.js';

/**
 * Why a connection to a broker could not be made, in the words a user acts on. Client libraries
 * bury the cause (ioredis says "Connection is closed.", amqplib's last retry says ETIMEDOUT when
 * the broker had refused the login at once), so drivers classify what the client saw with this.
 */
export type ConnectFailureKind = 'auth' | 'tls' | 'host-not-found' | 'refused' | 'timeout' | 'other';

export interface ConnectFailure {
  readonly kind: ConnectFailureKind;
  /** One line for an error message: "authentication refused (…)", "connection refused at host:port", … */
  readonly reason: string;
  /** Retrying cannot help (wrong credentials, TLS misconfiguration): fail now, not at the timeout. */
  readonly fatal: boolean;
}

const TLS_CODES = new Set([
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'HOSTNAME_MISMATCH',
]);
const HOST_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
const AUTH_TEXT =
  /WRONGPASS|NOAUTH|invalid username-password|ACCESS[-_]REFUSED|Login was refused|authentication fail|SASL authentication/i;
const TLS_TEXT = /secure TLS connection|SSL routines|wrong version number|certificate|handshake failure/i;
const AUTH_NAMES = new Set(['KafkaJSSASLAuthenticationError']);
/** Kafka's SASL error types: a failed login, or a listener without SASL answering a SASL handshake. */
const AUTH_TYPES = /SASL/;

/** The error, its causes (`cause`, kafkajs' `originalError`) and AggregateError members. */
function chain(error: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && out.length < 16) {
    const current = queue.shift();
    if (!current || typeof current !== 'object' || out.includes(current as Record<string, unknown>)) continue;
    const entry = current as Record<string, unknown>;
    out.push(entry);
    // kafkajs wraps in `originalError`, ioredis' Cluster in `lastNodeError`.
    queue.push(entry.cause, entry.originalError, entry.lastNodeError);
    if (Array.isArray(entry.errors)) queue.push(...entry.errors);
  }
  return out;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** The client's own words, credentials masked, without the host:port Node repeats after a code. */
function detail(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return redactCredentials(message).trim();
}

/**
 * Classifies a failed connect. `target` is the `host:port` that was dialled (for "connection
 * refused at …"); `host` the name that was looked up.
 */
export function describeConnectFailure(
  error: unknown,
  target: { host: string; port: number | string },
): ConnectFailure {
  const entries = chain(error);
  const codes = entries.map((entry) => text(entry.code));
  const messages = entries.map((entry) => text(entry.message));
  const names = entries.map((entry) => text(entry.name));
  const types = entries.map((entry) => text(entry.type));
  const said = detail(error);
  const address = `${target.host}:${target.port}`;
  if (
    names.some((name) => AUTH_NAMES.has(name)) ||
    types.some((type) => AUTH_TYPES.test(type)) ||
    messages.some((message) => AUTH_TEXT.test(message))
  ) {
    const words = messages.find((message) => AUTH_TEXT.test(message)) ?? said;
    return {
      kind: 'auth',
      reason: `authentication refused by ${address} (${redactCredentials(words).trim()})`,
      fatal: true,
    };
  }
  if (
    codes.some((code) => TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) ||
    messages.some((message) => TLS_TEXT.test(message))
  ) {
    return { kind: 'tls', reason: `TLS handshake failed with ${address} (${said})`, fatal: true };
  }
  const dns = codes.find((code) => HOST_CODES.has(code));
  if (dns) return { kind: 'host-not-found', reason: `host not found: ${target.host} (${dns})`, fatal: false };
  if (codes.includes('ECONNREFUSED'))
    return { kind: 'refused', reason: `connection refused at ${address}`, fatal: false };
  if (codes.includes('ETIMEDOUT') || messages.some((message) => /ETIMEDOUT|timed? ?out/i.test(message))) {
    return { kind: 'timeout', reason: `no answer from ${address} (${said})`, fatal: false };
  }
  return { kind: 'other', reason: `${said} (${address})`, fatal: false };
}

/**
 * Of two failures seen while retrying, the one worth reporting: a specific cause beats a
 * timeout, so the attempt cut short by the deadline does not hide why the earlier ones failed.
 */
export function moreTelling(previous: ConnectFailure | undefined, next: ConnectFailure): ConnectFailure {
  if (previous && next.kind === 'timeout' && previous.kind !== 'timeout') return previous;
  return next;
}

/**
 * Whether `host:port` accepts a TCP connection within `timeoutMs`: tells "the server took the
 * connection but never finished the TLS handshake" (TLS spoken to a plain port) from "nothing
 * answered", after a TLS connect timed out.
 */
export function acceptsConnections(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (accepted: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(accepted);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The reason for a TLS connect that timed out against a server that does accept connections. */
export function tlsStalled(host: string, port: number | string, timeoutMs: number): ConnectFailure {
  return {
    kind: 'tls',
    reason: `TLS handshake failed with ${host}:${port}: it accepted the connection but completed no TLS handshake within ${timeoutMs} ms (does that port serve TLS?)`,
    fatal: true,
  };
}
