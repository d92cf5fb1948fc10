// Limit actors passivate a few seconds after their last message (app/node.ts, LIMIT_IDLE_MS), so that
// a sale of a million buyers fits in memory. A buyer who comes back soon after (pays, cancels, orders
// again) was then loaded again from the journal: a read, its rows parsed, its events replayed, its
// holds asked about. On bench:hot's rules variant (every buyer orders three times, ~5 s apart) those
// loads were about 40% of a rule-bound reservation's CPU.
//
// Here a passivated limit actor that leaves nothing undecided behind (every event it applied is
// journaled, no hold's fate unknown: its state is exactly its journal) leaves that state object, and
// its next incarnation starts from it instead of the journal (kept as the object: the text of a
// compact snapshot made each passivation and load cost about as much as the read it saved). Whatever
// happens to the buyer meanwhile reaches that next incarnation as a message (a settlement told to a
// passivated buyer activates one), so it needs no resolution of its holds either; a state last loaded
// from the journal more than WARM_RELOAD_AFTER_MS ago is loaded again all the same (a buyer who keeps
// coming back still has its holds asked about now and then). Each entry is taken once: an incarnation
// that fails starts again from the journal. Bounded by the bytes kept (estimated from what a state
// holds) and by age (in two generations of half the age each: see WarmBuyers); full, it refuses new
// entries (see put). In memory only: a restart reads journals.

import { AgedMap } from '../engine/aged-map.ts';
import type { BuyerState } from '../engine/index.ts';

/** A buyer's state as its passivated limit actor left it. */
export interface WarmBuyer {
  /** No longer the passivated actor's: the next incarnation's own. */
  state: BuyerState;
  /** The journal's last seq the state holds. */
  seq: number;
  /** Seq of the journal's last `restored` record (0: none). */
  compactedSeq: number;
  /** No compaction before this seq (see LimitActor). */
  compactRetrySeq: number;
  /** When the state was last loaded from the journal (see WARM_RELOAD_AFTER_MS in actors/limit-actor.ts). */
  loadedAt: number;
}

/** What an entry costs besides its state: the map's slot, the entry object. */
const ENTRY_OVERHEAD_BYTES = 96;
/** Heap bytes of a state with nothing in it (its object, maps, ledger slot). */
const STATE_BYTES = 200;
/**
 * Heap bytes per order, tombstone and no-show of a state, about (docs/performance.md, session 6: a
 * live buyer's CountedOrder 88 B, its map slot, its id string, boxed times; facts are shared).
 */
const ORDER_BYTES = 250;
const TOMBSTONE_BYTES = 80;

/**
 * Aging is by generation, not by entry (engine/aged-map.ts): entries are put into the current
 * generation, which becomes the previous one after half the age bound, and the previous one is let go
 * whole when the next one starts (an entry is kept between half the bound and the bound; `take` gives
 * none past the bound). Evicting aged entries one by one walked the map from its oldest slot on every
 * put, and a map keeps a deleted entry's slot until its next rehash: with buyers taken and put back in a
 * cycle, each put stepped over up to ~100,000 such slots (32 µs a take and put at 100,000 warm buyers,
 * measured).
 */
export class WarmBuyers {
  private readonly entries: AgedMap<string, WarmBuyer>;

  constructor(
    private readonly bytes_max: number,
    /** An entry older than this is dropped (its buyer did not come back soon: the journal will do). */
    age_max_ms: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.entries = new AgedMap(age_max_ms, age_max_ms / 2);
  }

  /**
   * Keeps `entry` as `userId`'s (replacing any), once the generation past its age is let go; not kept
   * when the rest still fill the bound. (Dropping the oldest to make room would keep none of a sale
   * whose buyers come back in a cycle larger than the bound: each would be dropped just before its
   * buyer came back. Refused, the first ones are kept, and found.)
   */
  put(userId: string, entry: WarmBuyer): void {
    const at = this.now();
    this.entries.age(at);
    this.entries.delete(userId);
    const cost = costOf(userId, entry);
    if (this.entries.bytes + cost > this.bytes_max) return;
    this.entries.set(userId, entry, at, cost);
  }

  /** `userId`'s entry, removed: each is used once. */
  take(userId: string): WarmBuyer | undefined {
    const entry = this.entries.get(userId, this.now());
    this.entries.delete(userId);
    return entry;
  }

  get size(): number {
    this.entries.age(this.now());
    return this.entries.size;
  }

  /** Bytes kept, as counted against the bound. */
  get bytes(): number {
    return this.entries.bytes;
  }
}

function costOf(userId: string, entry: WarmBuyer): number {
  const s = entry.state;
  return ENTRY_OVERHEAD_BYTES + userId.length + STATE_BYTES + (s.orders.size + s.noShows.size) * ORDER_BYTES + s.released.size * TOMBSTONE_BYTES;
}
