// Every wait of the bus code is bounded, and every loop can be woken: these are the three pieces
// the buses and the relay share — a deadline on a promise, a sleep that a nudge or a stop cuts
// short, and the capped exponential backoff used for retries and redeliveries.
import { StoreUnavailableError } from '../errors.ts';

/**
 * Rejects with StoreUnavailableError when `work` has not settled after `timeout_ms`. `work` may still
 * settle later; its outcome is then ignored (and never an unhandled rejection).
 */
export async function within<T>(work: Promise<T>, timeout_ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`${what}: no answer within ${timeout_ms} ms`)), timeout_ms);
  });
  work.catch(() => {}); // a late rejection after the timeout is nobody's to handle
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `min_ms` on the first attempt, doubling with each further one, never above `max_ms`. */
export function backoff_ms(attempt: number, min_ms: number, max_ms: number): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 30);
  return Math.min(max_ms, min_ms * 2 ** exponent);
}

/**
 * A sleep that `wake()` ends early. A wake while nobody sleeps is remembered, so the next sleep
 * returns at once: a nudge that arrives while a loop is busy is never lost.
 */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  wake(): void {
    const resolve = this.resolve;
    if (!resolve) {
      this.pending = true;
      return;
    }
    this.resolve = undefined;
    clearTimeout(this.timer);
    resolve();
  }

  /** Resolves after `timeout_ms`, or at the first wake(). */
  sleep(timeout_ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.wake(), Math.max(0, timeout_ms));
    });
  }
}

