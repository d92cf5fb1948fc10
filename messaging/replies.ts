// The NATS edge's side of "Errors" in API.md: request bytes to a JSON value (bounded, like the
// HTTP body reader), and every outcome to a reply body. Errors reuse the HTTP edge's ApiError and
// its mapping of engine failures, so a code means the same on both transports:
//   {"ok": false, "error": "<code>", "message", "details"?, "rule"?, "retryAfter_s"?}
// `retryAfter_s` stands in for HTTP's Retry-After header on overloaded / unavailable.

import type { Failure } from '../actors/order-service.ts';
import { ApiError, internal, invalidRequest } from '../http/api-error.ts';
import { failureToApiError, mapEngineError } from '../http/engine-errors.ts';
import { refuseDeepJson } from '../http/json-depth.ts';

export type Reply = Record<string, unknown>;

const encoder = new TextEncoder();

export function encodeReply(reply: Reply): Uint8Array {
  return encoder.encode(JSON.stringify(reply));
}

/** A merchant command's success: `{"ok": true, ...the HTTP route's body}`. */
export function okReply(body: object): Reply {
  return { ok: true, ...body };
}

export function apiErrorReply(error: ApiError): Reply {
  const reply: Reply = { ok: false, ...error.toBody() };
  const retryAfter = error.retryAfterHeader();
  if (retryAfter !== undefined) reply.retryAfter_s = Number(retryAfter);
  return reply;
}

/** A business outcome of the engine (a value), with the code HTTP would answer. */
export function failureReply(failure: Failure): Reply {
  return apiErrorReply(failureToApiError(failure));
}

/** How a thrown error is answered, and how loudly it is logged. */
export interface ThrownOutcome {
  error: ApiError;
  /** `request`: the caller's mistake; `dependency`: overloaded or a dependency down; `bug`: anything else. */
  kind: 'request' | 'dependency' | 'bug';
}

/**
 * ApiErrors (bad requests) as they are; the engine's typed infrastructure errors as HTTP maps them
 * (OverloadedError → overloaded; AskTimeoutError, UnavailableError, StoreUnavailableError, ... →
 * unavailable); anything else is a bug, answered `internal` without its message, like HTTP's 500.
 */
export function outcomeOfThrown(thrown: unknown): ThrownOutcome {
  if (thrown instanceof ApiError) return { error: thrown, kind: thrown.status >= 500 ? 'dependency' : 'request' };
  const mapped = mapEngineError(thrown);
  if (mapped) return { error: mapped, kind: 'dependency' };
  return { error: internal(), kind: 'bug' };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The request's JSON value. Everything wrong with the bytes is `invalid_request` with details, as
 * in http/body.ts: more than `limitBytes`, empty, not UTF-8, malformed JSON.
 */
export function readJson(data: Uint8Array, limitBytes: number): unknown {
  if (data.length > limitBytes) {
    throw invalidRequest(`request body larger than ${limitBytes} bytes`, [
      { path: [], message: `the request body must be at most ${limitBytes} bytes`, limitBytes },
    ]);
  }
  if (data.length === 0) throw invalidRequest('request body is empty', [{ path: [], message: 'a JSON body is required' }]);
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    throw invalidRequest('request body is not valid UTF-8', [{ path: [], message: 'invalid UTF-8' }]);
  }
  refuseDeepJson(text);
  try {
    return JSON.parse(text);
  } catch (error) {
    // V8's SyntaxError quotes the input around the fault, and the input may be card keys: answer
    // with the position alone, when V8 gives one.
    const position = error instanceof SyntaxError ? /at position (\d+)/.exec(error.message)?.[1] : undefined;
    const message = position === undefined ? 'not valid JSON' : `not valid JSON (at position ${position})`;
    throw invalidRequest('malformed JSON', [{ path: [], message }]);
  }
}
