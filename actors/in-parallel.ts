// Work over a list, at most `width` items at once, in the list's order of starting.

/** Runs `work` over the items, at most `width` at once; rejects with the first failure, after which no item starts. */
export async function inParallel<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.min(width, items.length) }, async () => {
    try {
      while (next < items.length && !failed) await work(items[next++]!);
    } catch (error) {
      failed = true;
      throw error;
    }
  });
  await Promise.all(lanes);
}
