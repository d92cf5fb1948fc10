// The live reservations of one SKU/date: looked up by order id, walked in the order they were made.
// A flash sale holds hundreds of thousands of them. One JavaScript Map that size rehashes everything
// each time it doubles (measured: a 29 ms pause at 524,288 entries), so the index spreads them over
// BUCKETS maps by a hash of the id — each rehash is 1/BUCKETS of the size — and keeps the order of
// arrival in a queue whose released entries are skipped and compacted away.

const BUCKETS = 64;

/**
 * The bucket of an order id: a mix of its last characters. An engine order id (engine/ids.ts) ends
 * with its SKU/date's number after 16 random base-32 characters, so the characters before the dash
 * spread ids evenly; any other string still gets a deterministic bucket. Cheaper than hashing the
 * whole id (Map hashes it again anyway): a reservation is looked up two or three times per order.
 */
function bucketOf(orderId: string): number {
  const n = orderId.length;
  if (n === 0) return 0;
  const dash = orderId.lastIndexOf('-');
  const end = dash > 1 ? dash : n;
  return (orderId.charCodeAt(end - 1) * 31 + (end >= 2 ? orderId.charCodeAt(end - 2) : 0) * 7) & (BUCKETS - 1);
}

export interface Keyed {
  orderId: string;
}

export class ReservationIndex<R extends Keyed> {
  private readonly buckets: Map<string, R>[] = Array.from({ length: BUCKETS }, () => new Map());
  /** Every reservation in arrival order, including released ones not yet compacted away. */
  private queue: R[] = [];
  private head = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(orderId: string): R | undefined {
    return this.bucket(orderId).get(orderId);
  }

  has(orderId: string): boolean {
    return this.bucket(orderId).has(orderId);
  }

  /** Adds a reservation (replacing one with the same id, which then keeps its old place). */
  set(orderId: string, r: R): this {
    const b = this.bucket(orderId);
    const size = b.size;
    b.set(orderId, r); // one lookup: whether the id was new shows in the size
    if (b.size !== size) {
      this.count++;
      this.queue.push(r);
      return this;
    }
    // Replaced: the live entry of this id is the last one queued with it (a released one may still
    // sit before it, not yet compacted away).
    for (let i = this.queue.length - 1; i >= this.head; i--) {
      if (this.queue[i]!.orderId === orderId) {
        this.queue[i] = r;
        break;
      }
    }
    return this;
  }

  /**
   * Replaces, in one pass over the arrival queue, every live reservation for which `replace` returns
   * another object (with the same id), each keeping its place; returns how many. `set` of a known id
   * searches the queue for it: called for every reservation of a hot SKU/date that would be quadratic.
   */
  replaceEach(replace: (r: R) => R | undefined): number {
    let replaced = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const r = this.queue[i]!;
      const b = this.bucket(r.orderId);
      if (b.get(r.orderId) !== r) continue;
      const next = replace(r);
      if (next === undefined || next === r) continue;
      if (next.orderId !== r.orderId) throw new Error(`replaceEach: ${r.orderId} replaced by ${next.orderId}`);
      b.set(r.orderId, next);
      this.queue[i] = next;
      replaced++;
    }
    return replaced;
  }

  delete(orderId: string): boolean {
    if (!this.bucket(orderId).delete(orderId)) return false;
    this.count--;
    this.compact();
    return true;
  }

  /** The live reservations in arrival order. */
  *values(): IterableIterator<R> {
    for (let i = this.head; i < this.queue.length; i++) {
      const r = this.queue[i]!;
      if (this.bucket(r.orderId).get(r.orderId) === r) yield r;
    }
  }

  private bucket(orderId: string): Map<string, R> {
    return this.buckets[bucketOf(orderId)]!;
  }

  private isLive(r: R): boolean {
    return this.bucket(r.orderId).get(r.orderId) === r;
  }

  /** Drops released entries from the front, and rebuilds the queue when most of it is released. */
  private compact(): void {
    while (this.head < this.queue.length && !this.isLive(this.queue[this.head]!)) this.head++;
    const held = this.queue.length - this.head;
    if (this.count === 0) {
      this.queue = [];
      this.head = 0;
    } else if (held > 1024 && held > 2 * this.count) {
      this.queue = this.queue.slice(this.head).filter((r) => this.isLive(r));
      this.head = 0;
    }
  }
}
