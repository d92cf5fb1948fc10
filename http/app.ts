// The koa application: middleware order, then the storefront, admin and ops routers.
// Each router file holds one audience's routes; this file only assembles them.

import Koa from 'koa';
import Router from '@koa/router';
import type { StampedeNode } from '../app/node.ts';
import { createAuth } from './auth.ts';
import { unavailable } from './api-error.ts';
import { errorMiddleware } from './error-middleware.ts';
import { mapEngineError } from './engine-errors.ts';
import { IdempotencyGate } from './idempotency.ts';
import { adminRoutes } from './routes/admin.ts';
import { opsRoutes } from './routes/ops.ts';
import { paymentRoutes } from './routes/payments.ts';
import { ruleRoutes } from './routes/rules.ts';
import { storefrontRoutes } from './routes/storefront.ts';

/** What answers while the node starts: the probes, and the metrics that show the recovery. */
const STARTING_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
/** Retry-After while the node starts (a recovery takes seconds). */
const STARTING_RETRY_AFTER_S = 2;

export function createHttpApp(node: StampedeNode): Koa {
  const app = new Koa();
  app.proxy = false;
  const auth = createAuth({ ...node.config.secrets, now: () => node.clock.now() });
  const gate = new IdempotencyGate({ entries_max: node.config.idempotency_cache_max, keep_min_ms: 60_000, now: () => node.clock.now() });
  const router = new Router();
  storefrontRoutes(router, node, auth, gate);
  paymentRoutes(router, node, auth);
  adminRoutes(router, node, auth);
  ruleRoutes(router, node, auth);
  opsRoutes(router, node, auth);
  // Outermost: the recording sees the final status and error body of every request (not those a
  // starting node turned away: replayed, they would be orders made against a ready engine).
  const recorder = node.recorder;
  if (recorder) {
    const record = recorder.middleware(auth);
    app.use((ctx, next) => (node.isStarted ? record(ctx, next) : next()));
  }
  app.use(node.metrics.middleware());
  app.use(errorMiddleware({ logger: node.log, mapError: mapEngineError }));
  // While the node stops, a request arriving on a connection that was busy when the server closed
  // changes nothing: 503 and the connection closed (the requests in flight still get their answers).
  app.use(async (ctx, next) => {
    if (node.isStopping) {
      ctx.set('Connection', 'close');
      throw unavailable(1, 'the node is stopping: retry shortly (or on another node)');
    }
    // Listening while it starts (node.start({ listen: true })): only the probes answer until it is
    // ready; nothing else may reach stores and actors that are not open yet.
    // Matched by the router itself (its rules on case and a trailing slash), only while starting.
    if (node.isStarting && !router.match(ctx.path, ctx.method).pathAndMethod.some((l) => typeof l.path === 'string' && STARTING_ROUTES.has(l.path))) throw unavailable(STARTING_RETRY_AFTER_S, 'the node is starting (recovering what it holds): retry shortly');
    try {
      await next();
    } finally {
      // Answered while the node stops (in flight when it began), an error included: the connection
      // closes after it, so the stop does not wait out its drain for kept-alive connections, nor
      // reset one being reused.
      if (node.isStopping) ctx.set('Connection', 'close');
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
