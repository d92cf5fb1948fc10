// Driver errors are mapped once, here, into the few failures the engine reasons about.

export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Another writer appended the same (stream, seq): this writer's view of the stream is stale. */
export class JournalConflictError extends Error {
  override name = 'JournalConflictError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A unique key other than the journal's (e.g. a card key already stored). */
export class DuplicateKeyError extends Error {
  override name = 'DuplicateKeyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A card key is already assigned to an order (or is not a key of that SKU): nothing was recorded. */
export class CardKeyConflictError extends Error {
  override name = 'CardKeyConflictError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
