// Which (buyer, Idempotency-Key) pairs may have a stored first answer, known without a read. The HTTP
// gate (http/idempotency.ts) asks the store for a key it does not hold in memory — every new key of a
// flash sale, and nearly every one is new: a read that finds nothing (~7% of the engine's thread in a
// replay of a recorded sale, docs/performance.md "Session 22"). The writers of the store's answers
// (the projector for 201 and 409 sold_out, RefusalAnswers for the refusals) add their keys here before
// they write; at start the node adds every key the store holds, and until then every key may have an
// answer. Bloom filters (engine/bloom-filter.ts): "absent" is certain, so the read is skipped;
// "maybe" (a key with an answer, or a false positive) reads.
//
// An answer is honoured for IDEMPOTENCY_ANSWER_MS (24 h) from when it was made, so the keys go in
// generations of that length: a key is looked up in the current generation and the two before, and
// stays in one of them at least two generations (the current one is kept as an older one when the next
// begins, however long after). One would do on one clock; the second covers an answer made on a clock
// ahead of this node's (a restart on another host) by up to a day. Memory follows the last three days'
// keys, not every key ever.

import { BloomFilter } from '../engine/bloom-filter.ts';
import { IDEMPOTENCY_ANSWER_MS } from '../persistence/ports.ts';

/** Generations kept besides the current one. */
const OLDER_GENERATIONS = 2;

export class AnswerKeys {
  private current = new BloomFilter();
  /** The generations before the current one, the newest first (OLDER_GENERATIONS at most). */
  private older: BloomFilter[] = [];
  private startedAt: number;
  private complete = false;

  constructor(
    private readonly now: () => number,
    private readonly generation_ms: number = IDEMPOTENCY_ANSWER_MS,
  ) {
    this.startedAt = now();
  }

  /** A key whose first answer is stored, or about to be (the write may fail: "maybe" is still right). */
  add(userId: string, key: string): void {
    this.turn();
    const id = idOf(userId, key);
    if (!this.current.mightContain(id)) this.current.add(id);
  }

  /** Every key the store held at start was added. */
  markComplete(): void {
    this.complete = true;
  }

  /** False: the store certainly holds no answer of this key, so there is nothing to read. */
  mayExist(userId: string, key: string): boolean {
    if (!this.complete) return true;
    this.turn();
    const id = idOf(userId, key);
    return this.current.mightContain(id) || this.older.some((f) => f.mightContain(id));
  }

  /** Keys remembered in every generation kept and the bytes they take (ops, tests). */
  get stats(): { keys: number; bytes: number; complete: boolean } {
    const all = [this.current, ...this.older];
    return { keys: all.reduce((n, f) => n + f.size, 0), bytes: all.reduce((n, f) => n + f.bytes, 0), complete: this.complete };
  }

  private turn(): void {
    const now = this.now();
    if (now - this.startedAt < this.generation_ms) return;
    this.older = [this.current, ...this.older].slice(0, OLDER_GENERATIONS);
    this.current = new BloomFilter();
    this.startedAt = now;
  }
}

function idOf(userId: string, key: string): string {
  return `${userId}\u0000${key}`;
}
