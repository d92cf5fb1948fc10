// A map that keeps the most recently used entries, at most `max`, for caches that must stay bounded
// whatever the traffic (verified tokens, rate-limit buckets, recent checkpoints, recent assignments).
//
// Why not one Map evicting its oldest key with `keys().next()`: a Map keeps a deleted entry's slot
// until its table is rebuilt, and an iteration steps over every such slot, so once the bound is
// reached each eviction walked past every key evicted (and every key moved to the back) since the
// last rebuild: ~5 µs per new key at 10,000 keys, ~32 µs at 100,000, against under 1 µs here
// (bench/recent-map.ts; docs/performance.md, "Session 25"). The same walk cost the warm buyers' cache and
// the idempotency gate before (sessions 23 and 24).
//
// Here entries live in two generations. A new or used entry goes into the current one; once that
// holds half the bound, it becomes the previous one and the one before is let go whole (no walk: the
// collector takes it). An entry found in the previous generation moves to the current one, so what is
// let go is never more recent than what stays. Guarantees: never more than `max` entries; of the
// ceil(max / 2) keys set or read last, every one not deleted since is kept (a key used since the
// current generation began is in it; the previous generation took in the ceil(max / 2) keys used
// before that).

export class RecentMap<K, V> {
  /** Entries a generation holds at most before it becomes the previous one. */
  private readonly generationMax: number;
  private current = new Map<K, V>();
  private previous = new Map<K, V>();

  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`recent map: max must be an integer >= 1, got ${max}`);
    this.generationMax = Math.ceil(max / 2);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** The key's value, which counts as a use: it is kept at least as long as any key used before it. */
  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined || this.current.has(key)) return value;
    if (!this.previous.has(key)) return undefined;
    const moved = this.previous.get(key) as V;
    this.previous.delete(key);
    this.put(key, moved);
    return moved;
  }

  /** The key's value, not counted as a use (it does not delay the key's going). */
  peek(key: K): V | undefined {
    return this.current.has(key) ? this.current.get(key) : this.previous.get(key);
  }

  /** Whether the key is kept (not a use). */
  has(key: K): boolean {
    return this.current.has(key) || this.previous.has(key);
  }

  /** Sets the key's value, a use of it. */
  set(key: K, value: V): void {
    if (this.current.has(key)) {
      this.current.set(key, value);
      return;
    }
    this.previous.delete(key);
    this.put(key, value);
  }

  delete(key: K): boolean {
    const inCurrent = this.current.delete(key);
    return this.previous.delete(key) || inCurrent;
  }

  /** Adds a key the current generation lacks; a full generation becomes the previous one. */
  private put(key: K, value: V): void {
    this.current.set(key, value);
    if (this.current.size >= this.generationMax) {
      this.previous = this.current;
      this.current = new Map();
    }
  }
}
