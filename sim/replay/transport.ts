// How the simulator reaches an engine: through its koa handler in this process (no socket, so the
// figures measure the engine and not the loopback), or over HTTP to a running node.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { inject } from 'light-my-request';
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

/** Requests handed straight to the engine's HTTP handler (light-my-request), as a socket would. */
export class InjectTransport implements Transport {
  constructor(private readonly handler: Handler) {}

  async send(request: SimRequest): Promise<SimAnswer> {
    const res = await inject(this.handler, {
      method: request.method as 'GET',
      url: request.path,
      headers: request.headers,
      ...(request.body !== undefined ? { payload: request.body } : {}),
      remoteAddress: '127.0.0.1',
    });
    return { status: res.statusCode, body: parseBody(res.payload) };
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
