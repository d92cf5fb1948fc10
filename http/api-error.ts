// The contract's errors (/work/shared/API.md, "Errors"): one class, one constructor per code, so a route
// never spells a status or a code by hand. error-middleware.ts turns these into the JSON body.

export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'limit_exceeded'
  | 'not_found'
  | 'sold_out'
  | 'not_on_sale'
  | 'invalid_state'
  | 'idempotency_key_reused'
  | 'rate_limited'
  | 'overloaded'
  | 'unavailable'
  | 'internal';

/** One problem with a request; `path` locates it in the body (or e.g. ["params","skuId"], ["headers","idempotency-key"]). */
export interface Issue {
  path: (string | number)[];
  message: string;
  [more: string]: unknown;
}

export interface ApiErrorExtra {
  /** limit_exceeded: the id of the purchase rule that refused; sent in the body as `rule`. */
  rule?: string;
  /** 429/503: sent as the `Retry-After` header (whole seconds, at least 1), not in the body. */
  retryAfter_s?: number;
}

export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: ErrorCode;
  readonly details?: Issue[];
  readonly extra?: ApiErrorExtra;
  /** Extra response headers (e.g. WWW-Authenticate). */
  readonly headers?: Record<string, string>;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    opts: { details?: Issue[]; extra?: ApiErrorExtra; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = status;
    this.code = code;
    if (opts.details !== undefined) this.details = opts.details;
    if (opts.extra !== undefined) this.extra = opts.extra;
    if (opts.headers !== undefined) this.headers = opts.headers;
  }

  /** The contract body: `{"error","message"}` plus `details` / `rule` when present. */
  toBody(): Record<string, unknown> {
    const body: Record<string, unknown> = { error: this.code, message: this.message };
    if (this.details !== undefined) body.details = this.details;
    if (this.extra?.rule !== undefined) body.rule = this.extra.rule;
    return body;
  }

  /** The Retry-After value in whole seconds (>= 1), or undefined when this error carries none. */
  retryAfterHeader(): string | undefined {
    const s = this.extra?.retryAfter_s;
    if (s === undefined || !Number.isFinite(s)) return undefined;
    return String(Math.max(1, Math.ceil(s)));
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}

/** API.md: an invalid_request always has `details`; without issues of its own, one naming the whole request. */
export function invalidRequest(message: string, details?: Issue[]): ApiError {
  return new ApiError(400, 'invalid_request', message, { details: details ?? [{ path: [], message }] });
}

export function unauthorized(message = 'missing or invalid credentials', headers?: Record<string, string>): ApiError {
  return new ApiError(401, 'unauthorized', message, headers === undefined ? {} : { headers });
}

export function forbidden(message = 'not allowed'): ApiError {
  return new ApiError(403, 'forbidden', message);
}

export function limitExceeded(ruleId: string): ApiError {
  return new ApiError(403, 'limit_exceeded', `purchase rule ${ruleId} denies this order`, { extra: { rule: ruleId } });
}

/** `what` names the missing thing, e.g. notFound('order') → "order not found". */
export function notFound(what: string): ApiError {
  return new ApiError(404, 'not_found', `${what} not found`);
}

export function soldOut(): ApiError {
  return new ApiError(409, 'sold_out', 'not enough stock left for the requested quantity');
}

export function notOnSale(): ApiError {
  return new ApiError(409, 'not_on_sale', 'this SKU is not on sale');
}

export function invalidState(message: string): ApiError {
  return new ApiError(409, 'invalid_state', message);
}

export function idempotencyKeyReused(): ApiError {
  return new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request');
}

export function rateLimited(retryAfter_s: number): ApiError {
  return new ApiError(429, 'rate_limited', 'too many requests', { extra: { retryAfter_s } });
}

export function overloaded(retryAfter_s: number): ApiError {
  return new ApiError(503, 'overloaded', 'the server is overloaded, retry later', { extra: { retryAfter_s } });
}

export function unavailable(retryAfter_s: number, message = 'a required dependency is unavailable, retry later'): ApiError {
  return new ApiError(503, 'unavailable', message, {
    extra: { retryAfter_s },
  });
}

/** 405 on a known path with another method. The contract has no 405 code: we answer `invalid_request`. */
export function methodNotAllowed(allowed?: string): ApiError {
  return new ApiError(405, 'invalid_request', 'method not allowed on this path', {
    ...(allowed ? { headers: { Allow: allowed } } : {}),
  });
}

/** The only 500 body we ever send: no stack, no internals. */
export function internal(): ApiError {
  return new ApiError(500, 'internal', 'internal error');
}
