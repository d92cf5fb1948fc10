// Why: nact's `query` hands out 32-bit random reply ids (two callers can collide and get each other's
// reply) and arms one setTimeout per call. Asks are instead correlated here by our own increasing
// integers, and ONE interval timer for the whole runtime rejects the overdue ones.
//
// Pending asks are indexed by their timeout value: within one timeout value, deadlines grow with the
// id (insertion order), so each sweep stops at the first live deadline instead of scanning everything.

import { AskTimeoutError } from './errors.ts';

/** One ask awaiting its reply. Opaque outside the runtime (it is the envelope's reply handle). */
export interface PendingAsk {
  readonly id: number;
  readonly deadline: number;
  readonly actorKey: string;
  settled: boolean;
  /** Set of outstanding asks of the incarnation it was handed to; removed from it when settled. */
  holder: Set<PendingAsk> | null;
  /** @internal */ resolveFn: (value: unknown) => void;
  /** @internal */ rejectFn: (error: Error) => void;
  /** @internal */ group: Map<number, PendingAsk>;
}

export class DeadlineSweeper {
  private readonly byTimeout = new Map<number, Map<number, PendingAsk>>();
  private nextId = 1;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly now: () => number,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  /** Number of asks not yet settled. */
  get size(): number {
    return this.count;
  }

  add(actorKey: string, timeoutMs: number, resolve: (v: unknown) => void, reject: (e: Error) => void): PendingAsk {
    let group = this.byTimeout.get(timeoutMs);
    if (!group) {
      group = new Map();
      this.byTimeout.set(timeoutMs, group);
    }
    const p: PendingAsk = {
      id: this.nextId++,
      deadline: this.now() + timeoutMs,
      actorKey,
      settled: false,
      holder: null,
      resolveFn: resolve,
      rejectFn: reject,
      group,
    };
    group.set(p.id, p);
    this.count++;
    return p;
  }

  /** Resolves the ask; false (and nothing happens) if it was already answered, failed or timed out. */
  resolve(p: PendingAsk, value: unknown): boolean {
    if (!this.settle(p)) return false;
    p.resolveFn(value);
    return true;
  }

  reject(p: PendingAsk, error: Error): boolean {
    if (!this.settle(p)) return false;
    p.rejectFn(error);
    return true;
  }

  /** Rejects every ask whose deadline has passed; returns how many. */
  sweep(): number {
    const now = this.now();
    let expired = 0;
    for (const [timeoutMs, group] of this.byTimeout) {
      for (const p of group.values()) {
        if (p.deadline > now) break;
        this.reject(p, new AskTimeoutError(`ask to '${p.actorKey}' timed out after ${timeoutMs} ms`));
        expired++;
      }
      if (group.size === 0) this.byTimeout.delete(timeoutMs);
    }
    return expired;
  }

  /** Rejects every pending ask (shutdown). */
  rejectAll(makeError: (p: PendingAsk) => Error): void {
    for (const group of this.byTimeout.values()) {
      for (const p of group.values()) this.reject(p, makeError(p));
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
    p.group.delete(p.id);
    this.count--;
    if (p.holder) {
      p.holder.delete(p);
      p.holder = null;
    }
    return true;
  }
}
