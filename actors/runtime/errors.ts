// Why: the four ways an ask can end without a reply, as classes, so callers (the HTTP edge, the inventory
// actor) branch on `instanceof` instead of parsing messages; each keeps its `cause`.

/** The key's mailbox already holds `mailboxMax` messages: refused at once, nothing was queued. */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
  constructor(message = 'actor mailbox full', options?: { cause?: unknown }) {
    super(message, options);
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
