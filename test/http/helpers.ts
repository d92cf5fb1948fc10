// Shared test plumbing: a real koa app on an ephemeral port with the edge middleware mounted as production will.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import { Router } from '@koa/router';
import { pino, type Logger } from 'pino';
import { errorMiddleware, type ErrorMiddlewareOptions } from '../../http/error-middleware.ts';
import type { Metrics } from '../../http/metrics.ts';

export interface Harness {
  url: string;
  server: Server;
  logLines: string[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  metrics?: Metrics;
  mapError?: ErrorMiddlewareOptions['mapError'];
}

/** A logger that keeps its JSON lines in memory. */
export function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

export async function startApp(routes: (router: Router) => void, opts: HarnessOptions = {}): Promise<Harness> {
  const app = new Koa();
  const { logger, lines } = memoryLogger();
  if (opts.metrics) app.use(opts.metrics.middleware());
  app.use(errorMiddleware({ logger, ...(opts.mapError ? { mapError: opts.mapError } : {}) }));
  const router = new Router();
  routes(router);
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    logLines: lines,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
