// Which (buyer, Idempotency-Key) pairs may have a stored first answer, known without a read. The HTTP
// gate (http/idempotency.ts) asks the store for a key it does not hold in memory — every new key of a
// flash sale, and nearly every one is new: a read that finds nothing (~7% of the engine's thread in a
// replay of a recorded sale, docs/performance.md "Session 22"). The writers of the store's answers
// (the projector for 201 and 409 sold_out, RefusalAnswers for the refusals) add their keys here before
// they write; at start the node adds every key the store holds, and until then every key may have an
// answer (actors/known-keys.ts).
//
// An answer is honoured for IDEMPOTENCY_ANSWER_MS (24 h) from when it was made, so the keys go in
// generations of that length, each kept two more: one would do on one clock; the second covers an
// answer made on a clock ahead of this node's (a restart on another host) by up to a day.

import { IDEMPOTENCY_ANSWER_MS } from '../persistence/ports.ts';
import { KnownKeys } from './known-keys.ts';

export class AnswerKeys {
  private readonly keys: KnownKeys;

  constructor(now: () => number, generation_ms: number = IDEMPOTENCY_ANSWER_MS) {
    this.keys = new KnownKeys(generation_ms, now);
  }

  /** A key whose first answer is stored, or about to be. */
  add(userId: string, key: string): void {
    this.keys.add(idOf(userId, key));
  }

  /** Every key the store held at start was added. */
  markComplete(): void {
    this.keys.markComplete();
  }

  /** False: the store certainly holds no answer of this key, so there is nothing to read. */
  mayExist(userId: string, key: string): boolean {
    return this.keys.mayExist(idOf(userId, key));
  }

  get stats(): KnownKeys['stats'] {
    return this.keys.stats;
  }
}

function idOf(userId: string, key: string): string {
  return `${userId}\u0000${key}`;
}
