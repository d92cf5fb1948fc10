// A TCP proxy in front of a real service, so a test can make the service unreachable for the engine
// (cut every connection, refuse new ones) and bring it back, without stopping the service that other
// test files share.
import net from 'node:net';
import { freshMysqlDatabase, MYSQL_BASE_URL } from './services.ts';

export class TcpProxy {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  private clients = new Set<net.Socket>();
  private up = true;
  /** Bytes are dropped both ways while true: connections stay open and get no answer (a partition). */
  private blackholed = false;
  /** Bytes clients sent while blackholed, dropped before the service: a statement sent into the silence shows here. */
  droppedFromClients = 0;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = net.createServer((client) => {
      if (!this.up) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      this.clients.add(client);
      client.on('close', () => this.clients.delete(client));
      client.on('data', (d: Buffer) => {
        if (!this.blackholed) upstream.write(d);
        else this.droppedFromClients += d.length;
      });
      upstream.on('data', (d: Buffer) => {
        if (!this.blackholed) client.write(d);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** The service becomes unreachable: open connections die, new ones are refused at once. */
  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.up = true;
    this.blackholed = false;
  }

  /** The service goes silent: connections stay open, nothing they send is answered, nothing is refused. */
  blackhole(): void {
    this.blackholed = true;
  }

  /** Client connections open through the proxy now. */
  get openConnections(): number {
    return this.clients.size;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A fresh MariaDB database reached through a proxy of its own: the proxy, and the URL to give the engine. */
export async function proxiedMysql(database: string): Promise<{ proxy: TcpProxy; url: string }> {
  const db = new URL(await freshMysqlDatabase(database)).pathname;
  const target = new URL(MYSQL_BASE_URL);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 3306));
  const port = await proxy.start();
  // The configured server's user and password, the proxy's address.
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  url.pathname = db;
  return { proxy, url: url.href };
}
