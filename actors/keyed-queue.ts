// Work per key, one at a time in the order it came: what a later call of a key needs to see of an
// earlier one (a SKU's owner checked and then written; a SKU's card keys counted and then stored) is
// never interleaved. A key's entry goes once its queue is empty, so the map holds busy keys only.

export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` once the earlier work of `key` has settled (however it ended); resolves as `work` does. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const mine = (this.tails.get(key) ?? Promise.resolve()).then(work);
    const settled = mine.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
    return mine;
  }
}
