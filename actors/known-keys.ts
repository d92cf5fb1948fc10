// Keys known to exist somewhere (a buyer's journal stream, a stored Idempotency-Key answer), told
// without reading it: Bloom filters (engine/bloom-filter.ts), so "absent" is certain and the read is
// skipped, "maybe" (a key added, or a rare false positive) reads. Until `markComplete` (every key the
// store held at start was added) every key may exist. Writers add a key before they write it.
//
// With `generation_ms`, keys go in generations of that length: a key is looked up in the current one
// and the OLDER_GENERATIONS before it, so it is known at least that many generations after it was
// added (the current one is kept as an older one when the next begins, however long after), and memory
// follows recent keys, not every key ever. Without, a key is known for good.

import { BloomFilter } from '../engine/bloom-filter.ts';

/** Generations kept besides the current one. */
const OLDER_GENERATIONS = 2;

export class KnownKeys {
  private current = new BloomFilter();
  /** The generations before the current one, the newest first (OLDER_GENERATIONS at most). */
  private older: BloomFilter[] = [];
  private startedAt: number;
  private complete = false;

  constructor(
    private readonly generation_ms = Number.POSITIVE_INFINITY,
    private readonly now: () => number = () => 0,
  ) {
    this.startedAt = now();
  }

  /** A key that exists or is about to (its write may fail: "maybe" is still right). */
  add(key: string): void {
    this.turn();
    if (!this.current.mightContain(key)) this.current.add(key);
  }

  /** Every key the store held at start was added. */
  markComplete(): void {
    this.complete = true;
  }

  /** False: the key certainly does not exist, so there is nothing to read. */
  mayExist(key: string): boolean {
    if (!this.complete) return true;
    this.turn();
    return this.current.mightContain(key) || this.older.some((f) => f.mightContain(key));
  }

  /** Keys remembered in every generation kept and the bytes they take (ops, tests). */
  get stats(): { keys: number; bytes: number; complete: boolean } {
    const all = [this.current, ...this.older];
    return { keys: all.reduce((n, f) => n + f.size, 0), bytes: all.reduce((n, f) => n + f.bytes, 0), complete: this.complete };
  }

  private turn(): void {
    const now = this.now();
    if (!(now - this.startedAt >= this.generation_ms)) return;
    this.older = [this.current, ...this.older].slice(0, OLDER_GENERATIONS);
    this.current = new BloomFilter();
    this.startedAt = now;
  }
}
