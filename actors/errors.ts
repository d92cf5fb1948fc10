// Failures of the actor layer that the edge maps to the contract's 503s.

/** A dependency needed to make a decision durable failed; the command changed nothing it reported. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
