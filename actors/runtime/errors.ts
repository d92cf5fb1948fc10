// Why: the four ways an ask can end without a reply, as classes, so callers (the HTTP edge, the inventory
// actor) branch on `instanceof` instead of parsing messages; each keeps its `cause`.

/**
 * The key's mailbox already holds `mailboxMax` messages: refused at once, nothing was queued.
 * Made without a stack trace: it is how an overloaded node sheds load, thousands a second, and
 * capturing the stack made each refusal cost more than the reservation it refused (a collapse under
 * overload: docs/performance.md, "Session 16"). Where it was thrown says nothing an operator needs.
 */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
  constructor(message = 'actor mailbox full', options?: { cause?: unknown }) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = limit;
  }
}

/** No reply before the ask's deadline. The message may still be processed later; its reply is dropped. */
export class AskTimeoutError extends Error {
  override name = 'AskTimeoutError';
  constructor(message = 'ask timed out', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The incarnation holding this ask was discarded (its receive threw or rejected, or it asked to restart). */
export class ActorCrashedError extends Error {
  override name = 'ActorCrashedError';
  constructor(message = 'actor crashed', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The runtime is stopping or stopped. */
export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
  constructor(message = 'actor runtime is shutting down', options?: { cause?: unknown }) {
    super(message, options);
  }
}
