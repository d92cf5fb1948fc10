// Every non-2xx answer leaves through here with the contract body {"error","message", ...}.
// Mount it right after the metrics middleware and before the routers:
//   app.use(metrics.middleware()); app.use(errorMiddleware({ logger }));
//   app.use(router.routes()); app.use(router.allowedMethods());   // allowedMethods WITHOUT { throw: true }
// Decisions:
// - ApiError → its status, body and headers (Retry-After for 429/503).
// - koa/http-errors style errors (ctx.throw(4xx), `expose: true`) → the contract code for that status, so a bad
//   request is never a 500; a 413 or any other unlisted 4xx becomes 400 invalid_request.
// - Anything else → 500 {"error":"internal","message":"internal error"}, the error itself only in the log.
// - No route matched → 404 not_found. A known path with another method (router.allowedMethods sets 405 and
//   `Allow`) → 405 with error `invalid_request` (the contract has no 405 code); the router's 501 for an
//   unknown method is answered the same way (405 invalid_request).
import type { Middleware, Context } from 'koa';
import type { Logger } from 'pino';
import { ApiError, internal, invalidRequest, methodNotAllowed, type ErrorCode } from './api-error.ts';
import { LogSampler } from '../app/log-sampler.ts';
import { routeLabel } from './metrics.ts';

export interface ErrorMiddlewareOptions {
  logger: Logger;
  /** Maps domain errors (e.g. a store being down) to an ApiError; return undefined for "not mine". */
  mapError?: (err: unknown) => ApiError | undefined;
  /** Real time, for the log's sampling (tests inject it). */
  now?: () => number;
}

/**
 * 5xx answers of one code are logged at most once a second, the line saying how many went unlogged
 * before it: an overloaded node sheds thousands of requests a second, and a log line each would cost
 * more than the shedding (the metrics count every answer).
 */
export const SERVER_ERROR_LOG_INTERVAL_MS = 1_000;

class ServerErrorLog {
  private readonly sampler: LogSampler;

  constructor(
    private readonly logger: Logger,
    now: () => number,
  ) {
    this.sampler = new LogSampler(SERVER_ERROR_LOG_INTERVAL_MS, now);
  }

  /** `unhandled`: a throw no mapping knew (a bug): logged at error with it, sampled the same way. */
  log(err: ApiError, method: string, path: string, route: string, unhandled?: unknown): void {
    // An unhandled throw is a bug of its route: sampled per route (its template: keyed on the path, a
    // client varying an id got a log line per request), so that one bug cannot hide another.
    const unlogged = this.sampler.take(unhandled === undefined ? err.code : `${err.code} ${method} ${route}`);
    if (unlogged === undefined) return;
    const counted = unlogged > 0 ? { unloggedSinceLast: unlogged } : {};
    if (unhandled !== undefined) this.logger.error({ err: unhandled, method, path, ...counted }, 'unhandled error');
    else this.logger.warn({ code: err.code, method, path, cause: err.cause, ...counted }, err.message);
  }
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'invalid_state',
  422: 'idempotency_key_reused',
  429: 'rate_limited',
  503: 'unavailable',
};

/** A 4xx error thrown by koa itself or by `ctx.throw` (http-errors), made into an ApiError. */
function fromHttpError(err: unknown): ApiError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === undefined || status < 400 || status > 499) return undefined;
  const message = e.expose === true && typeof e.message === 'string' && e.message ? e.message : 'invalid request';
  if (status === 405) return methodNotAllowed();
  const code = CODE_BY_STATUS[status];
  if (code === undefined || status === 400 || status === 409 || status === 422 || status === 429) return invalidRequest(message);
  return new ApiError(status, code, message);
}

export function sendApiError(ctx: Context, err: ApiError): void {
  ctx.status = err.status;
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
  const retryAfter = err.retryAfterHeader();
  if (retryAfter !== undefined && (err.status === 429 || err.status === 503)) ctx.set('Retry-After', retryAfter);
  ctx.body = err.toBody();
}

export function errorMiddleware(opts: ErrorMiddlewareOptions): Middleware {
  const { logger, mapError } = opts;
  const serverErrors = new ServerErrorLog(logger, opts.now ?? Date.now);
  return async function errors(ctx, next) {
    try {
      await next();
    } catch (err) {
      let apiErr: ApiError | undefined = err instanceof ApiError ? err : (mapError?.(err) ?? fromHttpError(err));
      if (apiErr === undefined) {
        apiErr = internal();
        serverErrors.log(apiErr, ctx.method, ctx.path, routeLabel(ctx), err);
      } else if (apiErr.status >= 500) {
        serverErrors.log(apiErr, ctx.method, ctx.path, routeLabel(ctx));
      } else {
        logger.debug({ code: apiErr.code, status: apiErr.status, method: ctx.method, path: ctx.path }, apiErr.message);
      }
      if (ctx.headerSent || !ctx.writable) {
        // A client that went away mid-request (any client can, as often as it likes) is no one's bug.
        if (ctx.headerSent) logger.warn({ method: ctx.method, path: ctx.path }, 'error after the response started; cannot answer');
        else logger.debug({ method: ctx.method, path: ctx.path }, 'error after the client went away; cannot answer');
        return;
      }
      sendApiError(ctx, apiErr);
      return;
    }
    // Nothing answered: give the router's bare statuses a contract body.
    if (ctx.body != null || ctx.status < 400) return;
    if (ctx.status === 404) {
      sendApiError(ctx, new ApiError(404, 'not_found', 'no such route'));
    } else if (ctx.status === 405 || ctx.status === 501) {
      // allowedMethods already set `Allow` for a 405; keep it.
      sendApiError(ctx, methodNotAllowed());
    } else {
      const code = CODE_BY_STATUS[ctx.status] ?? (ctx.status >= 500 ? 'internal' : 'invalid_request');
      sendApiError(ctx, new ApiError(ctx.status, code, ctx.message || 'error'));
    }
  };
}
