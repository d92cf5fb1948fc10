// Why: the four ways an ask can end without a reply, as classes, so callers (the HTTP edge, the inventory
// actor) branch on `instanceof` instead of parsing messages; each keeps its `cause`.

/**
 * An ask that ended without a reply. Made without a stack trace: the runtime makes them in bulk —
 * refusals of an overloaded key (thousands a second), every ask a stall times out, every ask of a
 * discarded incarnation or of a stopping node — and capturing a stack made each refusal cost more
 * than the reservation it refused (a collapse under overload: docs/performance.md, "Session 16").
 * Where the runtime made one says nothing an operator needs; a crash's `cause` keeps its own.
 */
export class NoReplyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = limit;
  }
}

/** The key's mailbox already holds `mailboxMax` messages: refused at once, nothing was queued. */
export class OverloadedError extends NoReplyError {
  override name = 'OverloadedError';
  constructor(message = 'actor mailbox full', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** No reply before the ask's deadline. The message may still be processed later; its reply is dropped. */
export class AskTimeoutError extends NoReplyError {
  override name = 'AskTimeoutError';
  constructor(message = 'ask timed out', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The incarnation holding this ask was discarded (its receive threw or rejected, or it asked to restart). */
export class ActorCrashedError extends NoReplyError {
  override name = 'ActorCrashedError';
  constructor(message = 'actor crashed', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The runtime is stopping or stopped. */
export class ShuttingDownError extends NoReplyError {
  override name = 'ShuttingDownError';
  constructor(message = 'actor runtime is shutting down', options?: { cause?: unknown }) {
    super(message, options);
  }
}
