// Stock invariants of every SKU/date the run touched: never oversold; the engine's reserved and sold
// counts are exactly the orders it lists as holding stock (so nothing is left reserved without an
// order once expiries ran); and no buyer was refused as sold out while stock stayed free.
import type { CheckResult } from '../run/results.ts';
import { releasedAt, stockKey, type EngineView, type ListedOrder } from './engine-view.ts';
import type { RunFacts, StockChange } from './run-facts.ts';
import { Violations } from './violations.ts';

/** Statuses whose units are reserved, and those whose units are sold. */
const RESERVED = new Set<ListedOrder['status']>(['reserved']);
const SOLD = new Set<ListedOrder['status']>(['paid', 'delivered']);

/** Units held by the listed orders of each SKU/date: reserved, and sold (paid or delivered). */
export function unitsByKey(view: EngineView): Map<string, { reserved: number; sold: number }> {
  const out = new Map<string, { reserved: number; sold: number }>();
  for (const o of view.orders.values()) {
    const key = stockKey(o.skuId, o.date);
    let u = out.get(key);
    if (!u) out.set(key, (u = { reserved: 0, sold: 0 }));
    if (RESERVED.has(o.status)) u.reserved += o.qty;
    if (SOLD.has(o.status)) u.sold += o.qty;
  }
  return out;
}

export function noOversell(facts: RunFacts, view: EngineView, margin_ms = 0): CheckResult {
  const v = new Violations();
  const units = unitsByKey(view);
  // At every moment, not only at the end: reservations granted past the stock and released again
  // (expired by the run's clock jump) leave no trace in the end state. Judged between each two stock
  // changes of the SKU/date (and after the last), against the total in force then (totalWhile: the
  // total a PUT answered, plus the keys uploaded since; after the last change, the total now); not
  // while a change is in flight, nor where the total is not known.
  const timelines = takenTimelines(view, 'releases first');
  for (const { skuId, date } of facts.stock) {
    const key = stockKey(skuId, date);
    const inv = view.inventory.get(key);
    if (!inv) continue;
    if (inv.reserved + inv.sold > inv.total) v.add(`${key}: reserved ${inv.reserved} + sold ${inv.sold} > total ${inv.total}`);
    if (inv.reserved < 0 || inv.sold < 0 || inv.available < 0) v.add(`${key}: a negative count (${JSON.stringify(inv)})`);
    const u = units.get(key);
    if (u && u.reserved + u.sold > inv.total) v.add(`${key}: the orders hold ${u.reserved + u.sold} units of a total of ${inv.total}`);
    const changes = facts.stockChanges.get(key) ?? [];
    // A stock set answered with another total than it asked for (an engine adding instead of setting).
    for (const c of changes) {
      if (c.kind === 'total' && c.total !== undefined && c.requested !== undefined && c.total !== c.requested) {
        v.add(`line ${c.line}: ${key}: stock set to ${c.requested} was answered total ${c.total}`);
      }
    }
    const timeline = timelines.get(key);
    if (!timeline) continue;
    // The spans between changes, in run time: [answered of one, sent of the next).
    const bounds: [number, number][] = [];
    let from = -Infinity;
    for (const c of changes) {
      bounds.push([from, c.sent_ms]);
      from = Math.max(from, c.answered_ms);
    }
    bounds.push([from, Infinity]);
    for (const [a, b] of bounds) {
      if (b <= a) continue;
      const total = totalWhile(changes, a, b, inv.total);
      if (total === undefined) continue;
      // Narrowed by the clocks' margin at both ends; a span shorter than twice the margin (two changes
      // close together) cannot be placed on the orders' clock: not judged.
      const lo = facts.started_wall_ms + a + margin_ms;
      const hi = facts.started_wall_ms + b - margin_ms;
      if (lo > hi) continue;
      const most = timeline.maxIn(lo, hi);
      if (most > total) {
        const when = b === Infinity ? (a === -Infinity ? '' : ' since its last stock change') : ' between two stock changes';
        v.add(`${key}: the orders held ${most} units at once of a total of ${total}${when}`);
      }
    }
  }
  return v.result('no SKU/date oversold', `reserved + sold ≤ total, by the live actors and by the orders, now and at every moment, against the total in force then, on ${facts.stock.length} SKU/dates`);
}

/** Each SKU/date's units taken over time: an order holds its qty from its creation until it was cancelled or expired (paid ones for good). */
function takenTimelines(view: EngineView, atOneInstant: 'takes first' | 'releases first'): Map<string, TakenTimeline> {
  const changes = new Map<string, { t: number; d: number }[]>();
  for (const o of view.orders.values()) {
    const key = stockKey(o.skuId, o.date);
    let list = changes.get(key);
    if (!list) changes.set(key, (list = []));
    list.push({ t: Date.parse(o.createdAt), d: o.qty });
    if (o.status === 'cancelled' || o.status === 'expired' || o.status === 'refund_required') list.push({ t: releasedAt(o), d: -o.qty });
  }
  const out = new Map<string, TakenTimeline>();
  for (const [key, list] of changes) out.set(key, new TakenTimeline(list, atOneInstant));
  return out;
}

/**
 * The live counts equal the listed orders. With `expiredBy_ms` (the run waited past every
 * reservation's expiry), an order still `reserved` after its expiry is a violation too.
 */
export function stockAccounted(facts: RunFacts, view: EngineView, options: { expiredBy_ms?: number; grace_ms: number }): CheckResult {
  const v = new Violations();
  const units = unitsByKey(view);
  let overdue = 0;
  for (const { skuId, date } of facts.stock) {
    const key = stockKey(skuId, date);
    const inv = view.inventory.get(key);
    if (!inv) continue;
    const u = units.get(key) ?? { reserved: 0, sold: 0 };
    if (inv.reserved !== u.reserved) v.add(`${key}: ${inv.reserved} units reserved, but the reserved orders hold ${u.reserved}`);
    if (inv.sold !== u.sold) v.add(`${key}: ${inv.sold} units sold, but the paid and delivered orders hold ${u.sold}`);
  }
  if (options.expiredBy_ms !== undefined) {
    for (const o of view.orders.values()) {
      if (o.status === 'reserved' && Date.parse(o.expiresAt) + options.grace_ms < options.expiredBy_ms) {
        overdue++;
        v.add(`${o.orderId} (${o.skuId}/${o.date}) is still reserved ${Math.round((options.expiredBy_ms - Date.parse(o.expiresAt)) / 1000)} s after it expired`);
      }
    }
  }
  const after = options.expiredBy_ms !== undefined ? ', after every reservation expired' : '';
  return v.result('stock accounted for', `live reserved and sold equal the orders that hold them${after}, on ${facts.stock.length} SKU/dates (${overdue} overdue)`);
}

/**
 * The SKU/date's total all the time a request was in flight (run times `from`..`to`), from the
 * requests of the run that set it, or undefined when that is not known. The replayer sends a stock
 * change only once every line before it is answered, and the lines after it only once it is (admin
 * barriers), and it times them all on one clock: a change answered before `from` was in force, one
 * sent after `to` was not yet; one in flight meanwhile (a repeat decided when its first request was
 * sent, before the change) leaves the total unknown. A change answered 4xx changed nothing (the
 * contract); one answered 5xx or not at all may have, from its sending on, so it leaves the total
 * unknown until a later total is set. Known: the last total set before (the answer gives it) plus the
 * keys uploaded since; or, when no total is set after, the engine's total now less the keys uploaded
 * after.
 */
export function totalWhile(changes: readonly StockChange[], from: number, to: number, total_now: number): number | undefined {
  /** The total set before `from` as its answer gave it, plus the keys uploaded since (undefined: not told). */
  let before: number | undefined;
  /** A change sent before `to` whose effect is not known (answered 5xx, or not at all) and no total set since. */
  let uncertain = false;
  /** Whether a change after `to` leaves the engine's total now unlike the one in force (a total set, an unknown change). */
  let setAfter = false;
  let addedAfter = 0;
  for (const c of changes) {
    if (c.status >= 400 && c.status < 500) continue;
    const known = c.status >= 200 && c.status < 300;
    if (c.sent_ms >= to) {
      if (known && c.kind === 'keys' && c.added !== undefined) addedAfter += c.added;
      else setAfter = true;
      continue;
    }
    if (!known) {
      uncertain = true;
      continue;
    }
    if (c.answered_ms > from) return undefined;
    if (c.kind === 'total') {
      before = c.total;
      uncertain = false;
    } else if (before !== undefined) {
      before = c.added === undefined ? undefined : before + c.added;
    }
  }
  if (uncertain) return undefined;
  if (!setAfter) return total_now - addedAfter;
  return before;
}

/**
 * A sold-out answer is wrong when, at every moment it could have been decided, the stock it asked
 * for was free. The engine's own orders give the stock taken over time: each holds its qty from its
 * creation until it was cancelled or expired (paid orders for good). A refusal sent at `s` and
 * answered at `a` was decided in [s, a]; widened by `margin_ms` for the clocks (the orders' times are
 * the engine's), it is justified when at some moment of that span total − taken < qty, i.e. when the
 * most stock taken in the span leaves less than qty. The total is the one in force all that time
 * (totalWhile); a refusal while it is not known (a stock change in flight at the same time) is not
 * judged.
 */
export function noUndersell(facts: RunFacts, view: EngineView, margin_ms: number): CheckResult {
  const v = new Violations();
  // At one instant, takes before releases: the higher count gives the refusal the benefit of the doubt.
  const timelines = takenTimelines(view, 'takes first');
  let judged = 0;
  for (const s of facts.soldOut) {
    const inv = view.inventory.get(s.key);
    if (!inv) continue;
    // A repeat of a keyed request gets the first answer again: decided as early as the first was sent.
    const total = totalWhile(facts.stockChanges.get(s.key) ?? [], s.decided_from_ms, s.answered_ms, inv.total);
    if (total === undefined) continue;
    judged++;
    const from = facts.started_wall_ms + s.decided_from_ms - margin_ms;
    const to = facts.started_wall_ms + s.answered_ms + margin_ms;
    const taken = timelines.get(s.key)?.maxIn(from, to) ?? 0;
    if (total - taken >= s.qty) {
      v.add(`line ${s.line}: ${s.key} answered sold_out for ${s.qty}, yet at most ${taken} of ${total} units were taken while it was decided`);
    }
  }
  return v.result(
    'no SKU/date undersold',
    `${judged} of ${facts.soldOut.length} sold_out answers judged against the stock the engine's orders held while each was decided (not judged: a stock change in flight at the same time)`,
  );
}

/** Units taken over time by a SKU/date's orders, with the most taken in a span in O(log n). */
export class TakenTimeline {
  private readonly times: number[] = [];
  /** Sparse table: level k holds the max of taken over 2^k consecutive steps. */
  private readonly table: number[][] = [];

  /** `atOneInstant`: which of a take and a release at the same ms comes first (the benefit of the doubt goes to what is judged). */
  constructor(changes: { t: number; d: number }[], atOneInstant: 'takes first' | 'releases first' = 'takes first') {
    changes.sort(atOneInstant === 'takes first' ? (a, b) => a.t - b.t || b.d - a.d : (a, b) => a.t - b.t || a.d - b.d);
    const taken: number[] = [];
    let n = 0;
    for (const c of changes) {
      n += c.d;
      this.times.push(c.t);
      taken.push(n);
    }
    this.table.push(taken);
    for (let k = 1; 1 << k <= taken.length; k++) {
      const prev = this.table[k - 1]!;
      const half = 1 << (k - 1);
      const level: number[] = [];
      for (let i = 0; i + (1 << k) <= taken.length; i++) level.push(Math.max(prev[i]!, prev[i + half]!));
      this.table.push(level);
    }
  }

  /** The most units taken at any moment of [from, to] (`to` may be Infinity). */
  maxIn(from: number, to: number): number {
    if (from > to) throw new RangeError(`maxIn: from ${from} is after to ${to}`);
    // The step in force at `from` is the last change at or before it (none: nothing taken yet).
    const first = this.lastAtOrBefore(from);
    const last = this.lastAtOrBefore(to);
    const atFrom = first >= 0 ? this.table[0]![first]! : 0;
    if (last <= first) return atFrom;
    const lo = first + 1;
    const k = 31 - Math.clz32(last - lo + 1);
    return Math.max(atFrom, this.table[k]![lo]!, this.table[k]![last - (1 << k) + 1]!);
  }

  private lastAtOrBefore(t: number): number {
    let lo = 0;
    let hi = this.times.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.times[mid]! <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
