// Bounded polling for end-to-end tests: read until a condition holds, or fail naming what was awaited
// and the last value read. Never a bare sleep standing in for an assertion.

/** Calls `read` every `interval_ms` until `done(value)`; throws after `timeout_ms` with the last value. */
export async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeout_ms = 20_000, interval_ms = 50): Promise<T> {
  const deadline_ms = Date.now() + timeout_ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline_ms) throw new Error(`timed out after ${timeout_ms} ms waiting for ${what}: ${JSON.stringify(value)?.slice(0, 500)}`);
    await new Promise((resolve) => setTimeout(resolve, interval_ms));
  }
}

/** Runs `work` over `items` with at most `concurrency` at a time; results in item order. */
export async function inParallel<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!, i);
      }
    }),
  );
  return results;
}

/** What `p` rejects with; throws if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}
