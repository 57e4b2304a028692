import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that a test controls, put between a client and its broker to cut the
 * network without touching the broker: `interrupt()` drops every connection and refuses new ones
 * (a cable pulled), `restore()` lets clients in again. The listening port stays the same
 * throughout, so the client's URL keeps pointing at it.
 */
export class TcpProxy {
  private readonly server: Server;
  /** Each accepted client with its upstream socket, while both are open. */
  private readonly links = new Map<Socket, Socket>();
  private refusing = false;
  /** Connections accepted (and forwarded) so far: a reconnect shows up here. */
  connections = 0;

  private constructor(
    server: Server,
    readonly port: number,
  ) {
    this.server = server;
  }

  /**
   * Starts a proxy to `target` (host:port) on 127.0.0.1:`listenPort`, by default a free port; a
   * given one is where the broker tells clients to connect (see BrokerHandle.proxied). Resolves
   * once it listens.
   */
  static async start(targetHost: string, targetPort: number, listenPort = 0): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
    const proxy = new TcpProxy(server, address.port);
    server.on('connection', (client) => proxy.accept(client, targetHost, targetPort));
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's (credentials and path kept). */
  rewrite(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString().replace(/\/$/, '');
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = createConnection({ host, port });
    this.links.set(client, upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.links.delete(client);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /**
   * Drops every open connection (both sides see a reset) and refuses new ones until restore().
   * Returns how many it dropped: none means no client was connected through the proxy.
   */
  interrupt(): number {
    this.refusing = true;
    const dropped = this.links.size;
    for (const [client, upstream] of this.links) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    this.links.clear();
    return dropped;
  }

  restore(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.interrupt();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
