// How the simulator reaches an engine: through its koa handler in this process (no socket, so the
// figures measure the engine and not the loopback), or over HTTP to a running node.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Pool } from 'undici';

export interface SimRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The exact body bytes (JSON text, or a deliberately malformed text). */
  body?: string;
}

export interface SimAnswer {
  status: number;
  /** Parsed JSON, or the text when it was not JSON, or undefined when empty. */
  body: unknown;
}

export interface Transport {
  send(request: SimRequest): Promise<SimAnswer>;
  close(): Promise<void>;
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** What an injected request's socket needs to look like to koa (remote address, writable). */
class InjectedSocket extends EventEmitter {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 0;
  readonly encrypted = false;
  readonly writable = true;
  setTimeout(): this {
    return this;
  }
  destroy(): void {}
}

/** The request side: a readable stream of the body with the fields of an IncomingMessage koa reads. */
class InjectedRequest extends Readable {
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly complete = true;
  readonly rawHeaders: string[] = [];
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  private body: Buffer | undefined;

  constructor(
    request: SimRequest,
    readonly socket: InjectedSocket,
  ) {
    super();
    this.method = request.method;
    this.url = request.path;
    this.body = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8');
    this.headers = { host: 'stampede.sim' };
    for (const [name, value] of Object.entries(request.headers)) this.headers[name.toLowerCase()] = value;
    if (this.body !== undefined) this.headers['content-length'] = String(this.body.length);
  }

  get connection(): InjectedSocket {
    return this.socket;
  }

  override _read(): void {
    if (this.body !== undefined) this.push(this.body);
    this.body = undefined;
    this.push(null);
  }
}

/** The response side: keeps the status, headers and body, and says 'finish' when ended. */
class InjectedResponse extends EventEmitter {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  private readonly headers = new Map<string, number | string | readonly string[]>();
  private readonly chunks: Buffer[] = [];

  constructor(
    readonly socket: InjectedSocket,
    private readonly done: (status: number, body: string) => void,
  ) {
    super();
  }

  get connection(): InjectedSocket {
    return this.socket;
  }
  get finished(): boolean {
    return this.writableEnded;
  }
  setHeader(name: string, value: number | string | readonly string[]): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }
  getHeader(name: string): number | string | readonly string[] | undefined {
    return this.headers.get(name.toLowerCase());
  }
  getHeaders(): Record<string, number | string | readonly string[]> {
    return Object.fromEntries(this.headers);
  }
  getHeaderNames(): string[] {
    return [...this.headers.keys()];
  }
  hasHeader(name: string): boolean {
    return this.headers.has(name.toLowerCase());
  }
  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }
  flushHeaders(): void {
    this.headersSent = true;
  }
  writeHead(status: number, message?: string | Record<string, string>, headers?: Record<string, string>): this {
    this.statusCode = status;
    const h = typeof message === 'object' ? message : headers;
    if (typeof message === 'string') this.statusMessage = message;
    for (const [name, value] of Object.entries(h ?? {})) this.setHeader(name, value);
    this.headersSent = true;
    return this;
  }
  write(chunk: string | Uint8Array): boolean {
    this.headersSent = true;
    this.chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk));
    return true;
  }
  end(chunk?: string | Uint8Array | (() => void)): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined && typeof chunk !== 'function') this.write(chunk);
    this.headersSent = true;
    this.writableEnded = true;
    this.done(this.statusCode, Buffer.concat(this.chunks).toString('utf8'));
    setImmediate(() => {
      this.writableFinished = true;
      this.emit('finish');
      this.emit('close');
    });
    return this;
  }
}

/**
 * Requests handed straight to the engine's HTTP handler, without a socket: a readable request and
 * a response that keeps what is written, with the fields koa and the engine's middleware use. It
 * replaces light-my-request, which measured ~90 µs per request for a trivial handler here (200 µs
 * for parallel POSTs), more than a reservation costs the engine; the simulator's tests run every
 * route through this transport.
 */
export class InjectTransport implements Transport {
  constructor(private readonly handler: Handler) {}

  send(request: SimRequest): Promise<SimAnswer> {
    return new Promise((resolve) => {
      // One socket per request, as one keep-alive connection per request in flight would be.
      const socket = new InjectedSocket();
      const req = new InjectedRequest(request, socket);
      const res = new InjectedResponse(socket, (status, text) => resolve({ status, body: parseBody(text) }));
      this.handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    });
  }

  async close(): Promise<void> {}
}

export interface HttpTransportOptions {
  /** Keep-alive connections to the engine. */
  connections: number;
  /** Longest wait for one answer; past it the request counts as unanswered. */
  timeout_ms: number;
}

/** Requests over HTTP/1.1 keep-alive connections (undici) to a running node. */
export class HttpTransport implements Transport {
  private readonly pool: Pool;

  constructor(origin: string, options: HttpTransportOptions) {
    this.pool = new Pool(origin, {
      connections: options.connections,
      headersTimeout: options.timeout_ms,
      bodyTimeout: options.timeout_ms,
      keepAliveTimeout: 60_000,
    });
  }

  async send(request: SimRequest): Promise<SimAnswer> {
    const res = await this.pool.request({
      method: request.method as 'GET',
      path: request.path,
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
    });
    return { status: res.statusCode, body: parseBody(await res.body.text()) };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
