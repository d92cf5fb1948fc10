// Why: nact's `query` hands out 32-bit random reply ids (two callers can collide and get each other's
// reply) and arms one setTimeout per call. Asks are instead correlated here by our own increasing
// integers, and ONE interval timer for the whole runtime rejects the overdue ones.
//
// Pending asks are queued per timeout value: within one timeout value, deadlines grow with insertion
// order, so each sweep stops at the first live deadline instead of scanning everything.
//
// Why slots and not a Map or a Set: a hash table that takes one entry and drops one per ask (hundreds of
// thousands a second on a hot key) is rebuilt every few thousand asks, and V8 leaves the old table as
// it was, still pointing at the asks that were pending then. Once such a table is in the old
// generation, every young object it points at (the ask, its promise, what the caller's continuation
// holds) survives each scavenge and is promoted, until the next full collection: measured on
// bench:hot, the scavenges took 8.4 ms (median) with the Map and the per-actor Set, 4.2 ms without,
// and p99 fell from ~25 to ~14 ms. Here an ask sits in a slot of a fixed-size chunk, the slot is
// cleared when the ask settles, and a chunk is dropped once all its slots are: nothing dead keeps a
// pending ask reachable.

import { AskTimeoutError } from './errors.ts';

/** Slots per chunk of a queue. */
const CHUNK_SLOTS = 512;

/**
 * Whoever an ask was handed to (an actor incarnation): counts the asks it holds that are not settled,
 * and lists them (linked through the asks themselves, see PendingAsk.heldNext), so that a discarded
 * incarnation finds its own asks without scanning every pending one (a wide failure discards thousands
 * of incarnations while hundreds of thousands of asks wait: scanning, that blocked the loop for tens of
 * seconds).
 */
export interface AskHolder {
  heldAsks: number;
  heldFirst: PendingAsk | null;
}

/** One ask awaiting its reply. Opaque outside the runtime (it is the envelope's reply handle). */
export interface PendingAsk {
  readonly id: number;
  /** When it times out, in ms after the sweeper's start (an integer V8 keeps unboxed for 24 days). */
  readonly deadline: number;
  readonly actorKey: string;
  settled: boolean;
  /** The incarnation it was handed to (null until then, and once settled). */
  holder: AskHolder | null;
  /**
   * Its neighbours in its holder's list (null when none, and once settled: a settled ask is unlinked,
   * so a pending one never keeps a settled one reachable).
   */
  heldPrev: PendingAsk | null;
  heldNext: PendingAsk | null;
  /** @internal */ resolveFn: (value: unknown) => void;
  /** @internal */ rejectFn: (error: Error) => void;
  /** @internal What the caller gets is map(reply, mapArg) when set (see DeadlineSweeper.add). */
  map: ((value: any, arg: any) => unknown) | null;
  /** @internal */ mapArg: unknown;
  /** @internal */ chunk: Chunk;
  /** @internal */ slot: number;
}

interface Chunk {
  readonly slots: (PendingAsk | undefined)[];
  /** Slots handed out so far (the next free one). */
  filled: number;
  /** Slots holding an ask not yet settled. */
  live: number;
  /** Slots before this one are all cleared (where a sweep resumes). */
  scanned: number;
}

/** The asks of one timeout value, oldest first. */
class AskQueue {
  chunks: Chunk[] = [];

  /** A new ask, completed here in one object literal (no properties added later); its parts as arguments, not an object of its own per ask. */
  push(
    id: number,
    deadline: number,
    actorKey: string,
    resolveFn: (value: unknown) => void,
    rejectFn: (error: Error) => void,
    map: ((value: any, arg: any) => unknown) | null,
    mapArg: unknown,
  ): PendingAsk {
    let tail = this.chunks[this.chunks.length - 1];
    if (!tail || tail.filled === CHUNK_SLOTS) {
      // Sized once: a growing array would leave its old backing store pointing at the asks.
      tail = { slots: new Array<PendingAsk | undefined>(CHUNK_SLOTS).fill(undefined), filled: 0, live: 0, scanned: 0 };
      this.chunks.push(tail);
    }
    const ask: PendingAsk = {
      id,
      deadline,
      actorKey,
      settled: false,
      holder: null,
      heldPrev: null,
      heldNext: null,
      resolveFn,
      rejectFn,
      map,
      mapArg,
      chunk: tail,
      slot: tail.filled++,
    };
    tail.slots[ask.slot] = ask;
    tail.live++;
    return ask;
  }

  /** Drops the chunks whose every slot was handed out and cleared. */
  compact(): void {
    let keep = 0;
    const last = this.chunks.length - 1;
    for (let i = 0; i <= last; i++) {
      const c = this.chunks[i]!;
      if (c.live > 0 || (i === last && c.filled < CHUNK_SLOTS)) this.chunks[keep++] = c;
    }
    this.chunks.length = keep;
  }

  /** Every ask not yet settled, oldest first (a copy: settling them while iterating is fine). */
  pending(): PendingAsk[] {
    const out: PendingAsk[] = [];
    for (const c of this.chunks) {
      if (c.live === 0) continue;
      for (let i = c.scanned; i < c.filled; i++) {
        const p = c.slots[i];
        if (p) out.push(p);
      }
    }
    return out;
  }
}

export class DeadlineSweeper {
  private readonly byTimeout = new Map<number, AskQueue>();
  private nextId = 1;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The clock's reading at the start: deadlines are kept relative to it. */
  private readonly base: number;

  constructor(
    private readonly now: () => number,
    intervalMs: number,
  ) {
    this.base = now();
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  /** Number of asks not yet settled. */
  get size(): number {
    return this.count;
  }

  /**
   * A new pending ask. With `map`, the caller is resolved with map(reply, mapArg) instead of the reply
   * (and rejected with what map throws): no promise of its own to wait on the reply and transform it,
   * which a caller parked on a group commit would keep alive — and the scavenger copy — until then.
   */
  add<A>(
    actorKey: string,
    timeoutMs: number,
    resolve: (v: unknown) => void,
    reject: (e: Error) => void,
    map: ((value: any, arg: A) => unknown) | null = null,
    mapArg?: A,
  ): PendingAsk {
    let queue = this.byTimeout.get(timeoutMs);
    if (!queue) {
      queue = new AskQueue();
      this.byTimeout.set(timeoutMs, queue);
    }
    this.count++;
    return queue.push(this.nextId++, this.now() - this.base + timeoutMs, actorKey, resolve, reject, map, mapArg);
  }

  /** Slots the queues keep (settled or not): what the pending asks cost beyond themselves. */
  retainedSlots(): number {
    let n = 0;
    for (const queue of this.byTimeout.values()) n += queue.chunks.length * CHUNK_SLOTS;
    return n;
  }

  /** Marks the ask as held by `holder` (handed to it): see heldBy. */
  hold(p: PendingAsk, holder: AskHolder): void {
    if (p.settled || p.holder === holder) return;
    if (p.holder) unhold(p);
    p.holder = holder;
    holder.heldAsks++;
    const first = holder.heldFirst;
    p.heldNext = first;
    if (first) first.heldPrev = p;
    holder.heldFirst = p;
  }

  /** The asks `holder` holds that are not settled (a copy: settling them while iterating is fine). */
  heldBy(holder: AskHolder): PendingAsk[] {
    const out: PendingAsk[] = [];
    for (let p = holder.heldFirst; p !== null; p = p.heldNext) out.push(p);
    return out;
  }

  /** Resolves the ask; false (and nothing happens) if it was already answered, failed or timed out. */
  resolve(p: PendingAsk, value: unknown): boolean {
    if (!this.settle(p)) return false;
    const { resolveFn, rejectFn, map, mapArg } = p;
    this.forget(p);
    if (map === null) {
      resolveFn(value);
      return true;
    }
    let mapped: unknown;
    try {
      mapped = map(value, mapArg);
    } catch (error) {
      rejectFn(error instanceof Error ? error : new Error(String(error)));
      return true;
    }
    resolveFn(mapped);
    return true;
  }

  reject(p: PendingAsk, error: Error): boolean {
    if (!this.settle(p)) return false;
    const rejectFn = p.rejectFn;
    this.forget(p);
    rejectFn(error);
    return true;
  }

  /** Rejects every ask whose deadline has passed; returns how many. */
  sweep(): number {
    const now = this.now() - this.base;
    let expired = 0;
    for (const [timeoutMs, queue] of this.byTimeout) {
      sweeping: for (const c of queue.chunks) {
        for (let i = c.scanned; i < c.filled; i++) {
          const p = c.slots[i];
          if (!p) {
            if (i === c.scanned) c.scanned++;
            continue;
          }
          if (p.deadline > now) break sweeping;
          this.reject(p, new AskTimeoutError(`ask to '${p.actorKey}' timed out after ${timeoutMs} ms`));
          expired++;
          if (i === c.scanned) c.scanned++;
        }
      }
      queue.compact();
      if (queue.chunks.length === 0) this.byTimeout.delete(timeoutMs);
    }
    return expired;
  }

  /** Rejects every pending ask (shutdown). */
  rejectAll(makeError: (p: PendingAsk) => Error): void {
    for (const queue of this.byTimeout.values()) {
      for (const p of queue.pending()) this.reject(p, makeError(p));
    }
    this.byTimeout.clear();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private settle(p: PendingAsk): boolean {
    if (p.settled) return false;
    p.settled = true;
    this.count--;
    const c = p.chunk;
    c.slots[p.slot] = undefined;
    c.live--;
    if (p.holder) unhold(p);
    return true;
  }

  /** A settled ask may stay referenced (an envelope still in a batch): it keeps nothing of its caller. */
  private forget(p: PendingAsk): void {
    p.resolveFn = noop;
    p.rejectFn = noop;
    p.map = null;
    p.mapArg = undefined;
  }
}

/** Takes the ask out of its holder's list and count. */
function unhold(p: PendingAsk): void {
  const holder = p.holder!;
  holder.heldAsks--;
  if (p.heldPrev) p.heldPrev.heldNext = p.heldNext;
  else holder.heldFirst = p.heldNext;
  if (p.heldNext) p.heldNext.heldPrev = p.heldPrev;
  p.heldPrev = null;
  p.heldNext = null;
  p.holder = null;
}

const noop = (): void => {};
