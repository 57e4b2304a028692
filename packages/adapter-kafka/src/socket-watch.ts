import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type ConnectFailure, describeConnectFailure, PlugmqError, tlsStalled } from '@plugmq/core/driver';
import type { ISocketFactory } from 'kafkajs';

/** As kafkajs' own socket factory: keep-alive probes after a minute of silence. */
const KEEP_ALIVE_MS = 60_000;

interface Dial {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  tcp: boolean;
  secure: boolean;
  error: unknown;
}

/**
 * kafkajs' socket factory, watched: it remembers how the latest sockets to the brokers failed,
 * so a connect that fails can say why ("connection refused at host:port", "host not found",
 * "TLS handshake failed") where kafkajs only retries until our deadline and says nothing.
 */
export class SocketWatch {
  private dials: Dial[] = [];
  /** Told of a failure no retry can cure (a failed TLS handshake), so connect need not wait it out. */
  onFatal: ((failure: ConnectFailure) => void) | undefined;

  readonly factory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
    const useTls = Boolean(ssl);
    const socket: Socket = useTls
      ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
      : tcpConnect({ host, port }, onConnect);
    socket.setKeepAlive(true, KEEP_ALIVE_MS);
    const dial: Dial = { host, port, tls: useTls, tcp: false, secure: false, error: undefined };
    this.dials.push(dial);
    if (this.dials.length > 16) this.dials.shift();
    socket.once('connect', () => {
      dial.tcp = true;
    });
    socket.once('secureConnect', () => {
      dial.secure = true;
    });
    socket.once('error', (error) => {
      dial.error = error;
      const failure = describeConnectFailure(error, dial);
      if (failure.fatal) this.onFatal?.(failure);
    });
    return socket;
  };

  /** Forgets earlier sockets: a new connect is judged by its own. */
  reset(): void {
    this.dials = [];
  }

  /** Why the latest failed socket failed, if one did; a TLS socket that never finished its handshake counts. */
  failure(timeoutMs: number): ConnectFailure | undefined {
    for (let index = this.dials.length - 1; index >= 0; index--) {
      const dial = this.dials[index] as Dial;
      if (dial.error !== undefined) {
        const failure = describeConnectFailure(dial.error, dial);
        if (failure.kind === 'timeout' && dial.tls && dial.tcp && !dial.secure) {
          return tlsStalled(dial.host, dial.port, timeoutMs);
        }
        return failure;
      }
      if (dial.tls && dial.tcp && !dial.secure) return tlsStalled(dial.host, dial.port, timeoutMs);
    }
    return undefined;
  }

  /**
   * The CONNECTION error for a failed connect to `brokers`: what kafkajs rejected with when it
   * says something (a refused login), else what the sockets met (refused, unknown host, TLS).
   */
  connectError(error: unknown, brokers: string, timeoutMs: number): PlugmqError {
    if (isConnectFailure(error)) {
      return new PlugmqError('CONNECTION', `cannot connect to kafka at ${brokers}: ${error.reason}`);
    }
    // withTimeout's own CONNECTION: the deadline passed while kafkajs kept retrying.
    const timedOut = error instanceof PlugmqError;
    let failure = timedOut ? undefined : describeConnectFailure(error, firstBroker(brokers));
    if (failure === undefined || failure.kind === 'other' || failure.kind === 'timeout') {
      failure = this.failure(timeoutMs) ?? failure;
    }
    const reason = failure?.reason ?? `no answer within ${timeoutMs} ms`;
    const within = timedOut ? ` within ${timeoutMs} ms` : '';
    return new PlugmqError('CONNECTION', `cannot connect to kafka at ${brokers}${within}: ${reason}`);
  }
}

function isConnectFailure(value: unknown): value is ConnectFailure {
  return typeof value === 'object' && value !== null && 'fatal' in value && 'reason' in value;
}

/** The first `host:port` of a broker list, for errors that name no broker themselves. */
function firstBroker(brokers: string): { host: string; port: string } {
  const first = brokers.split(',')[0] ?? '';
  const colon = first.lastIndexOf(':');
  return colon < 0
    ? { host: first, port: '9092' }
    : { host: first.slice(0, colon), port: first.slice(colon + 1) };
}
