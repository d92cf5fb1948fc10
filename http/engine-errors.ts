// The engine's failures, mapped once to the contract's answers: business failures (values) to
// their codes, infrastructure errors (thrown) to 503 overloaded / unavailable with Retry-After.

import { ActorCrashedError, AskTimeoutError, OverloadedError, ShuttingDownError } from '../actors/runtime/index.ts';
import { UnavailableError } from '../actors/errors.ts';
import type { Failure } from '../actors/order-service.ts';
import { JournalConflictError, StoreUnavailableError } from '../persistence/errors.ts';
import { ApiError, forbidden, idempotencyKeyReused, limitExceeded, invalidRequest, invalidState, notOnSale, overloaded, soldOut, unavailable } from './api-error.ts';

export function mapEngineError(error: unknown): ApiError | undefined {
  if (error instanceof OverloadedError) return overloaded(1);
  if (
    error instanceof AskTimeoutError ||
    error instanceof ActorCrashedError ||
    error instanceof ShuttingDownError ||
    error instanceof UnavailableError ||
    error instanceof StoreUnavailableError ||
    error instanceof JournalConflictError
  ) {
    return unavailable(1);
  }
  return undefined;
}

export function failureToApiError(f: Failure): ApiError {
  switch (f.error) {
    case 'not_found':
      // The engine's message names what is missing already ("unknown order X", "no stock for S on D").
      return new ApiError(404, 'not_found', f.message);
    case 'forbidden':
      return forbidden(f.message);
    case 'sold_out':
      return soldOut();
    case 'not_on_sale':
      return notOnSale();
    case 'invalid_state':
      return invalidState(f.message);
    case 'invalid_request':
      return invalidRequest(f.message);
    case 'idempotency_key_reused':
      return idempotencyKeyReused();
    case 'overloaded':
      return overloaded(1);
    case 'limit_exceeded':
      return limitExceeded(f.rule);
  }
}
