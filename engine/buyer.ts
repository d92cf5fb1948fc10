// One buyer's limit state: the orders that count toward the purchase rules, the orders released already,
// and the no-shows. decide(state, command, now) -> { events, reply } never changes the state;
// evolveBuyer(state, event) applies one event, mutating the state it is given (as inventory.ts does), and
// is deterministic: replaying a buyer's events rebuilds the same state (tested).
//
// - hold: evaluates the order against the rules carried by the command (the rule book's current set,
//   so a rule change applies to the next order) and records it `held`, or replies limit_exceeded.
//   Idempotent per order id. An order released before (its tombstone) is never held: a cancel that
//   overtakes its own hold cannot leave usage behind, nor can a retried hold after a release.
// - confirm: held -> counted (paid, delivered). Idempotent; a no-op for an order not held.
// - release: held or counted -> removed, and a tombstone; idempotent; also for an order not (yet) held.
// - no_show: records a no-show of an order (idempotent per order id). It carries the order's facts, so
//   an order pruned long ago (a no-show comes after the usage date) still counts where its SKU belongs.
//   Its `at` is a fact of the order (when it became a no-show: its date passed unredeemed), not the time
//   it was noticed, so noticing it again gives the same `at`; one older than what prune dropped is ignored.
// - adopt: an order placed while no rule existed at all, taken in when the first rule arrives
//   (actors/rule-adoption.ts): held or counted without evaluation (the order exists already; the
//   rules count it, they do not refuse it). Idempotent; an order released before is not adopted;
//   a held one created before `acceptFrom_ms` is refused as stale like a hold (a counted one is
//   final, so it is taken whatever its age).
// - prune: drops what no rule in force can reach any more (state stays bounded), see `decidePrune`.
// - compact: the whole state as one `restored` event, which replaces the state when applied: the
//   journal before it is no longer needed to rebuild the buyer (actors/limit-actor.ts drops it).
//   None when its snapshot is over BUYER_SNAPSHOT_BYTES_MAX (the journal then stays whole).
//
// Time: `now` must not go backwards between commands to one buyer (the actor's clock). An order's
// `createdAt` is stamped before anyone can release it, so a tombstone's time is >= its order's creation.

import { internAttributes, internFacts, internString } from './facts-intern.ts';
import {
  DAY_MS,
  evaluate,
  reachOf,
  usageReach,
  type UsageNoShow,
  type UsageOrder,
  type RefusalReason,
  type RuleSet,
  type Usage,
  type UsageLedger,
} from './rules.ts';

/** Orders held or counted per buyer at once; a hold beyond it is refused (too_many_orders). */
export const BUYER_ORDERS_MAX = 10_000;
/** Tombstones kept per buyer; beyond it the oldest goes, and holds of orders created before it are refused as stale. */
export const BUYER_TOMBSTONES_MAX = 10_000;
/** No-shows kept per buyer; beyond it the oldest recorded goes. */
export const BUYER_NO_SHOWS_MAX = 10_000;
/** How long a tombstone is kept: a hold arrives within milliseconds of its order's creation, never a day later. */
export const TOMBSTONE_KEEP_MS = DAY_MS;
/** Prune keeps at least this much history, whatever the rules, so a rule added later still sees the last month. */
export const PRUNE_KEEP_MIN_MS = 31 * DAY_MS;
/**
 * Order and no-show ids one `pruned` event lists at most (~40 KiB of JSON); a prune dropping more
 * decides as many events as it takes (a buyer at BUYER_ORDERS_MAX and BUYER_NO_SHOWS_MAX: 20).
 */
export const PRUNE_IDS_PER_EVENT_MAX = 1_000;

/**
 * The largest `restored` snapshot a compaction writes, in bytes of JSON; past it the compaction is
 * refused (`snapshot_too_large`) and the journal stays as it is, which rebuilds the buyer all the
 * same (actors/limit-actor.ts backs off). The record goes to MySQL in one statement, as bytes when
 * prepared but as X'hex' text (twice its size) in a batch, and a statement must fit the server's
 * max_allowed_packet (16 MiB at least, persistence/sql/open.ts): 4 MiB is 8 MiB as hex, half of it. A
 * buyer at every bound above (10,000 orders, tombstones and no-shows) of 20 SKUs takes 1.6 MiB;
 * only hundreds of distinct SKUs with long attributes take more (each set of attributes is written once).
 */
export const BUYER_SNAPSHOT_BYTES_MAX = 4 * 1024 * 1024;

/** An order as the buyer state knows it: the facts a rule looks at, and its id. */
export interface BuyerOrderFacts extends UsageOrder {
  orderId: string;
}

export interface BuyerOrder extends BuyerOrderFacts {
  /** held: reserved, not paid; counted: paid or delivered. Both count toward the rules. */
  status: 'held' | 'counted';
}

export interface NoShow extends UsageNoShow {
  orderId: string;
}

export interface BuyerState {
  /** Counted orders (held or confirmed), by id, in hold order. */
  orders: Map<string, BuyerOrder>;
  /** Tombstones: order id -> when it was released, in release order (written through tombstonesOf). */
  released: ReadonlyMap<string, number>;
  /** No-shows by order id, in the order recorded (written through noShowsOf). */
  noShows: ReadonlyMap<string, NoShow>;
  /**
   * Holds of orders created before this are refused (stale): tombstones older than it may be gone, so
   * such a hold cannot be told from one whose release was forgotten.
   */
  acceptFrom_ms: number;
  /** No-shows before this are ignored: prune dropped those, and one noticed again must not come back. */
  noShowsFrom_ms: number;
  /**
   * `orders` again, compactly and in the same order, for evaluation (see UsageLedger); kept by
   * evolveBuyer while the buyer has at least LEDGER_ORDERS_MIN orders (below, evaluating the few order
   * objects costs about as much, and most buyers of a sale have one or two: no memory spent on them).
   */
  ledger: BuyerLedger | undefined;
}

/** A buyer with this many counted orders gets a ledger; one with fewer than half of it loses it. */
export const LEDGER_ORDERS_MIN = 4;

/** The counted orders as evaluate reads them, with their ids (entry i is order ids[i]). */
export interface BuyerLedger extends UsageLedger {
  ids: string[];
}

function ledgerOf(orders: Map<string, BuyerOrder>): BuyerLedger | undefined {
  if (orders.size < LEDGER_ORDERS_MIN) return undefined;
  const ledger: BuyerLedger = { ids: [], facts: [], qty: [], createdAt: [] };
  for (const o of orders.values()) appendToLedger(ledger, o);
  return ledger;
}

function appendToLedger(ledger: BuyerLedger, o: BuyerOrderFacts): void {
  ledger.ids.push(o.orderId);
  ledger.facts.push(internFacts(o));
  ledger.qty.push(o.qty);
  ledger.createdAt.push(o.createdAt);
}

function removeFromLedger(ledger: BuyerLedger, orderId: string): void {
  // Usually the latest hold (a sold-out order released at once): search from the end.
  for (let i = ledger.ids.length - 1; i >= 0; i--) {
    if (ledger.ids[i] === orderId) {
      ledger.ids.splice(i, 1);
      ledger.facts.splice(i, 1);
      ledger.qty.splice(i, 1);
      ledger.createdAt.splice(i, 1);
      return;
    }
  }
}

export type BuyerReleaseReason = 'cancelled' | 'expired' | 'refund_required' | 'not_reserved';

export type BuyerCommand =
  | { type: 'hold'; order: BuyerOrderFacts; rules: RuleSet }
  | { type: 'confirm'; orderId: string }
  | { type: 'release'; orderId: string; reason: BuyerReleaseReason }
  /** `at`: when the order became a no-show (its date passed unredeemed). */
  | { type: 'no_show'; order: BuyerOrderFacts; at: number }
  /** `held`: its reservation is live; `counted`: it is paid or delivered. */
  | { type: 'adopt'; order: BuyerOrderFacts; status: BuyerOrder['status'] }
  | { type: 'prune'; rules: RuleSet }
  | { type: 'compact' };

export type BuyerEvent =
  | { type: 'held'; order: BuyerOrderFacts; at: number }
  | { type: 'confirmed'; orderId: string; at: number }
  | { type: 'released'; orderId: string; reason: BuyerReleaseReason; at: number }
  | { type: 'no_show_recorded'; noShow: NoShow; at: number }
  /**
   * Drops the orders created before `ordersBefore_ms`, the no-shows before `noShowsBefore_ms`, the
   * tombstones before `acceptFrom_ms`, and the orders and no-shows listed by id (what no rule can
   * reach by its own facts, see decidePrune; at most PRUNE_IDS_PER_EVENT_MAX ids an event, absent in
   * events journaled before them). The bounds are -Infinity when nothing of that kind may go by time
   * (a rule reaches back for ever); the journal's JSON writes -Infinity as null, so evolve reads null
   * as -Infinity.
   */
  | {
      type: 'pruned';
      ordersBefore_ms: number | null;
      noShowsBefore_ms: number | null;
      acceptFrom_ms: number;
      orderIds?: string[];
      noShowIds?: string[];
      at: number;
    }
  /**
   * The buyer's whole state: applying it replaces the state, whatever came before. A compaction
   * writes the compact format; journals written before it hold the plain one, read as well.
   */
  | { type: 'restored'; snapshot: BuyerCompactSnapshot | BuyerSnapshot; at: number };

export type BuyerReply =
  /** Held now, or held already (idempotent). */
  | { outcome: 'held'; orderId: string }
  | { outcome: 'limit_exceeded'; ruleId: string; reason: RefusalReason }
  /** The order was released before this hold arrived: it never counts. */
  | { outcome: 'released_before'; orderId: string }
  /** The order was created before `acceptFrom_ms` (see BuyerState). */
  | { outcome: 'stale'; acceptFrom_ms: number }
  | { outcome: 'too_many_orders'; max: number }
  | { outcome: 'confirmed' }
  | { outcome: 'not_held' }
  | { outcome: 'released' }
  | { outcome: 'no_show_recorded' }
  /** Adopted now, or known already with at least that status. */
  | { outcome: 'adopted'; status: BuyerOrder['status'] }
  /** The no-show is older than `noShowsFrom_ms`: no rule in force could count it. Nothing recorded. */
  | { outcome: 'no_show_too_old'; noShowsFrom_ms: number }
  | { outcome: 'pruned'; orders: number; noShows: number; tombstones: number }
  /** `bytes`: the snapshot's JSON, in UTF-8 bytes (a large one gets a journal write of its own). */
  | { outcome: 'compacted'; bytes: number }
  /** The state's snapshot is `bytes` long, over BUYER_SNAPSHOT_BYTES_MAX: nothing to write. */
  | { outcome: 'snapshot_too_large'; bytes: number; max: number };

export interface BuyerDecision {
  events: BuyerEvent[];
  reply: BuyerReply;
}

/**
 * The tombstones and no-shows of a buyer who has none — most buyers of a sale: one shared empty map,
 * never written (tombstonesOf and noShowsOf give a buyer a map of its own at its first entry). Two
 * empty Maps cost ~370 bytes per live limit actor, a fifth of one holding an order.
 */
const NONE: ReadonlyMap<string, never> = new Map<string, never>();

/** The buyer's tombstones, made its own map first if it had none (see NONE). */
function tombstonesOf(state: BuyerState): Map<string, number> {
  if (state.released === NONE) state.released = new Map<string, number>();
  return state.released as Map<string, number>;
}

/** The buyer's no-shows, made its own map first if it had none (see NONE). */
function noShowsOf(state: BuyerState): Map<string, NoShow> {
  if (state.noShows === NONE) state.noShows = new Map<string, NoShow>();
  return state.noShows as Map<string, NoShow>;
}

export function emptyBuyer(): BuyerState {
  return {
    orders: new Map(),
    released: NONE,
    noShows: NONE,
    acceptFrom_ms: -Infinity,
    noShowsFrom_ms: -Infinity,
    ledger: undefined,
  };
}

/** The buyer's usage as `evaluate` reads it. */
export function buyerUsage(state: BuyerState): Usage {
  const usage: Usage = { orders: state.orders.values(), noShows: state.noShows.values() };
  if (state.ledger) usage.ledger = state.ledger;
  return usage;
}

/** A copy of the order's facts, its repeated values shared (engine/facts-intern.ts). */
/**
 * An order's facts with its shared strings and attributes (interned). The state's counted orders and
 * no-shows are instances of its two subclasses, not `{ ...facts, status }`: a spread's result took a
 * hidden class of its own per buyer here (a heap snapshot of 20,000 live buyers: a map and a
 * descriptor array, ~290 bytes, per held order; test/engine/buyer-shapes.test.ts), and a class gives
 * every instance the same one.
 */
interface InternedFacts extends BuyerOrderFacts {}
// (Its fields are BuyerOrderFacts', declared by the interface above and set in this order.)
class InternedFacts {
  constructor(o: BuyerOrderFacts) {
    this.orderId = o.orderId;
    this.skuId = internString(o.skuId);
    this.date = internString(o.date);
    this.merchantId = internString(o.merchantId);
    this.attributes = internAttributes(o.attributes);
    this.qty = o.qty;
    this.createdAt = o.createdAt;
  }
}

class CountedOrder extends InternedFacts implements BuyerOrder {
  constructor(
    o: BuyerOrderFacts,
    public status: BuyerOrder['status'],
  ) {
    super(o);
  }
}

class RecordedNoShow extends InternedFacts implements NoShow {
  constructor(
    o: BuyerOrderFacts,
    public at: number,
  ) {
    super(o);
  }
}

function factsOf(o: BuyerOrderFacts): BuyerOrderFacts {
  return new InternedFacts(o);
}

export function decideBuyer(state: BuyerState, command: BuyerCommand, now: number): BuyerDecision {
  switch (command.type) {
    case 'hold': {
      const o = command.order;
      if (state.released.has(o.orderId)) return { events: [], reply: { outcome: 'released_before', orderId: o.orderId } };
      if (state.orders.has(o.orderId)) return { events: [], reply: { outcome: 'held', orderId: o.orderId } };
      if (o.createdAt < state.acceptFrom_ms) return { events: [], reply: { outcome: 'stale', acceptFrom_ms: state.acceptFrom_ms } };
      if (state.orders.size >= BUYER_ORDERS_MAX) return { events: [], reply: { outcome: 'too_many_orders', max: BUYER_ORDERS_MAX } };
      // The candidate's facts shared like the held orders' (factsOf), so that evaluate finds the orders
      // of the same SKU/date by identity; the same copy is the event's.
      const facts = factsOf(o);
      // Windows from the order's own creation (its hold's time, which later orders count it at; its
      // shown createdAt comes after, when its SKU/date takes the stock), not from this decision's a
      // moment later: "created in the last N×24 h" before this order.
      const verdict = evaluate(command.rules, buyerUsage(state), facts, Math.min(facts.createdAt, now));
      if (!verdict.ok) return { events: [], reply: { outcome: 'limit_exceeded', ruleId: verdict.ruleId, reason: verdict.reason } };
      return { events: [{ type: 'held', order: facts, at: now }], reply: { outcome: 'held', orderId: o.orderId } };
    }
    case 'confirm': {
      const o = state.orders.get(command.orderId);
      if (!o) return { events: [], reply: { outcome: 'not_held' } };
      if (o.status === 'counted') return { events: [], reply: { outcome: 'confirmed' } };
      return { events: [{ type: 'confirmed', orderId: command.orderId, at: now }], reply: { outcome: 'confirmed' } };
    }
    case 'release': {
      if (state.released.has(command.orderId)) return { events: [], reply: { outcome: 'released' } };
      return { events: [{ type: 'released', orderId: command.orderId, reason: command.reason, at: now }], reply: { outcome: 'released' } };
    }
    case 'no_show': {
      const id = command.order.orderId;
      if (state.noShows.has(id)) return { events: [], reply: { outcome: 'no_show_recorded' } };
      if (command.at < state.noShowsFrom_ms) return { events: [], reply: { outcome: 'no_show_too_old', noShowsFrom_ms: state.noShowsFrom_ms } };
      // The facts the order was held with, when still known; else the ones the command brings.
      const facts = factsOf(state.orders.get(id) ?? command.order);
      return { events: [{ type: 'no_show_recorded', noShow: { ...facts, at: command.at }, at: now }], reply: { outcome: 'no_show_recorded' } };
    }
    case 'adopt': {
      const o = command.order;
      if (state.released.has(o.orderId)) return { events: [], reply: { outcome: 'released_before', orderId: o.orderId } };
      const known = state.orders.get(o.orderId);
      if (known) {
        if (known.status === 'held' && command.status === 'counted') {
          return { events: [{ type: 'confirmed', orderId: o.orderId, at: now }], reply: { outcome: 'adopted', status: 'counted' } };
        }
        return { events: [], reply: { outcome: 'adopted', status: known.status } };
      }
      if (command.status === 'held' && o.createdAt < state.acceptFrom_ms) return { events: [], reply: { outcome: 'stale', acceptFrom_ms: state.acceptFrom_ms } };
      if (state.orders.size >= BUYER_ORDERS_MAX) return { events: [], reply: { outcome: 'too_many_orders', max: BUYER_ORDERS_MAX } };
      const events: BuyerEvent[] = [{ type: 'held', order: factsOf(o), at: now }];
      if (command.status === 'counted') events.push({ type: 'confirmed', orderId: o.orderId, at: now });
      return { events, reply: { outcome: 'adopted', status: command.status } };
    }
    case 'prune':
      return decidePrune(state, command.rules, now);
    case 'compact': {
      const snapshot = buyerToCompactSnapshot(state);
      const bytes = utf8Bytes(JSON.stringify(snapshot));
      if (bytes > BUYER_SNAPSHOT_BYTES_MAX) return { events: [], reply: { outcome: 'snapshot_too_large', bytes, max: BUYER_SNAPSHOT_BYTES_MAX } };
      return { events: [{ type: 'restored', snapshot, at: now }], reply: { outcome: 'compacted', bytes } };
    }
  }
}

/**
 * What no rule in force can reach any more, given that holds of orders created before `acceptFrom_ms`
 * are refused from now on: orders created before the rules' reach, no-shows before the reach of the
 * no-show rules, tombstones older than TOMBSTONE_KEEP_MS; never anything younger than PRUNE_KEEP_MIN_MS
 * (tombstones aside). A rule put later sees only what is left. An order is dropped only if created
 * before the new acceptFrom, so a repeated hold of it is refused as stale instead of counted twice.
 *
 * Two steps. By time for every order at once (reachOf: the rules' windows, whatever an order's facts),
 * a bound each event carries; then order by order (usageReach: each rule's `match`, groupBy and
 * window), by id, for what is older than the floor but within that bound. With time alone, one rule
 * without a window on a single SKU (or a long campaign) kept every order of every SKU for ever, and a
 * buyer of 10,000 orders of other SKUs was refused every further order (BUYER_ORDERS_MAX) though no
 * rule counted them.
 */
function decidePrune(state: BuyerState, rules: RuleSet, now: number): BuyerDecision {
  const acceptFrom_ms = Math.max(state.acceptFrom_ms, now - TOMBSTONE_KEEP_MS);
  // Rolling windows from the earliest a candidate can be evaluated at: a hold is evaluated at its
  // order's creation (decideBuyer), which may be as early as acceptFrom (a day before now).
  const reach = reachOf(rules, Math.min(now, acceptFrom_ms), acceptFrom_ms);
  const floor_ms = now - PRUNE_KEEP_MIN_MS;
  const ordersBefore_ms = Math.min(reach.orders_ms, floor_ms, acceptFrom_ms);
  const noShowsBefore_ms = Math.min(reach.noShows_ms, floor_ms);
  const each = usageReach(rules, now, acceptFrom_ms);
  const keepOrdersFrom_ms = Math.min(floor_ms, acceptFrom_ms);
  let orders = 0;
  const orderIds: string[] = [];
  for (const o of state.orders.values()) {
    if (o.createdAt < ordersBefore_ms) orders++;
    else if (o.createdAt < keepOrdersFrom_ms && !each.order(o)) orderIds.push(o.orderId);
  }
  let noShows = 0;
  const noShowIds: string[] = [];
  for (const n of state.noShows.values()) {
    if (n.at < noShowsBefore_ms) noShows++;
    else if (n.at < floor_ms && !each.noShow(n)) noShowIds.push(n.orderId);
  }
  let tombstones = 0;
  for (const at of state.released.values()) if (at < acceptFrom_ms) tombstones++;
  const reply: BuyerReply = { outcome: 'pruned', orders: orders + orderIds.length, noShows: noShows + noShowIds.length, tombstones };
  // Nothing to drop: no event, and acceptFrom stays (it only has to cover what was dropped).
  if (reply.orders + reply.noShows + tombstones === 0) return { events: [], reply };
  // The ids in events of at most PRUNE_IDS_PER_EVENT_MAX; each carries the bounds (applying them
  // again drops nothing more), so every event is whole on its own.
  const events: BuyerEvent[] = [];
  let o = 0;
  let n = 0;
  do {
    const event: BuyerEvent = { type: 'pruned', ordersBefore_ms, noShowsBefore_ms, acceptFrom_ms, at: now };
    const takeOrders = Math.min(orderIds.length - o, PRUNE_IDS_PER_EVENT_MAX);
    if (takeOrders > 0) event.orderIds = orderIds.slice(o, (o += takeOrders));
    const takeNoShows = Math.min(noShowIds.length - n, PRUNE_IDS_PER_EVENT_MAX - takeOrders);
    if (takeNoShows > 0) event.noShowIds = noShowIds.slice(n, (n += takeNoShows));
    events.push(event);
  } while (o < orderIds.length || n < noShowIds.length);
  return { events, reply };
}

/** The length of `s` in UTF-8 (as the journal stores it), without encoding it. */
function utf8Bytes(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a surrogate pair: 4 bytes for its 2 code units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

export function evolveBuyer(state: BuyerState, event: BuyerEvent): BuyerState {
  switch (event.type) {
    case 'held':
      if (!state.orders.has(event.order.orderId)) {
        state.orders.set(event.order.orderId, new CountedOrder(event.order, 'held'));
        if (state.ledger) appendToLedger(state.ledger, event.order);
        else if (state.orders.size >= LEDGER_ORDERS_MIN) state.ledger = ledgerOf(state.orders);
      }
      return state;
    case 'confirmed': {
      const o = state.orders.get(event.orderId);
      if (o) o.status = 'counted';
      return state;
    }
    case 'released':
      if (state.orders.delete(event.orderId) && state.ledger) {
        if (state.orders.size < LEDGER_ORDERS_MIN / 2) state.ledger = undefined;
        else removeFromLedger(state.ledger, event.orderId);
      }
      if (!state.released.has(event.orderId)) {
        const released = tombstonesOf(state);
        released.set(event.orderId, event.at);
        if (released.size > BUYER_TOMBSTONES_MAX) {
          const [oldestId, oldestAt] = released.entries().next().value!;
          released.delete(oldestId);
          // Its order was created no later than it was released: refuse holds of anything that old.
          state.acceptFrom_ms = Math.max(state.acceptFrom_ms, oldestAt + 1);
        }
      }
      return state;
    case 'no_show_recorded':
      if (!state.noShows.has(event.noShow.orderId)) {
        const noShows = noShowsOf(state);
        noShows.set(event.noShow.orderId, new RecordedNoShow(event.noShow, event.noShow.at));
        if (noShows.size > BUYER_NO_SHOWS_MAX) {
          const [oldestId, oldest] = noShows.entries().next().value!;
          noShows.delete(oldestId);
          state.noShowsFrom_ms = Math.max(state.noShowsFrom_ms, oldest.at + 1);
        }
      }
      return state;
    case 'pruned': {
      // (Read as null from the journal, a bound would count as 0 in a comparison: it is -Infinity.)
      const ordersBefore_ms = event.ordersBefore_ms ?? -Infinity;
      const noShowsBefore_ms = event.noShowsBefore_ms ?? -Infinity;
      for (const [id, o] of state.orders) if (o.createdAt < ordersBefore_ms) state.orders.delete(id);
      if (event.orderIds) for (const id of event.orderIds) state.orders.delete(id);
      state.ledger = ledgerOf(state.orders);
      if (state.noShows.size > 0) {
        const noShows = noShowsOf(state);
        for (const [id, n] of noShows) if (n.at < noShowsBefore_ms) noShows.delete(id);
        if (event.noShowIds) for (const id of event.noShowIds) noShows.delete(id);
      }
      if (state.released.size > 0) {
        const released = tombstonesOf(state);
        for (const [id, at] of released) if (at < event.acceptFrom_ms) released.delete(id);
      }
      state.acceptFrom_ms = Math.max(state.acceptFrom_ms, event.acceptFrom_ms);
      state.noShowsFrom_ms = Math.max(state.noShowsFrom_ms, noShowsBefore_ms);
      return state;
    }
    case 'restored':
      return Object.assign(state, buyerFromSnapshot(event.snapshot));
  }
}

/**
 * The state as plain JSON (maps as entry lists, in their order), for the ops view and the tests; the
 * `restored` events of journals written before the compact format hold it too (see buyerFromSnapshot).
 */
export interface BuyerSnapshot {
  orders: BuyerOrder[];
  released: [string, number][];
  noShows: NoShow[];
  /** null for -Infinity (JSON has none). */
  acceptFrom_ms: number | null;
  noShowsFrom_ms: number | null;
}

/** The `format` of a BuyerCompactSnapshot (a BuyerSnapshot has none). */
export const BUYER_SNAPSHOT_FORMAT = 2;

/**
 * The state as a compaction writes it. Each distinct set of attributes is written once, each distinct
 * set of facts (SKU, date, merchant, attributes) once, and the orders and no-shows refer to them by
 * index: in the plain snapshot every order repeated its SKU's whole attributes, and a buyer with 1,000
 * orders of a SKU with 32 attributes of 256 characters made a record of 8.3 MiB (a buyer's orders are
 * mostly of a few SKUs, on many dates for tickets: the attributes apart from the dates, or 600 dates of
 * one such SKU made 5 MiB). Tuples, not objects: the field names would be most of an order's bytes.
 */
export interface BuyerCompactSnapshot {
  format: typeof BUYER_SNAPSHOT_FORMAT;
  /** Each distinct set of attributes once. */
  attributes: Record<string, string>[];
  /** [skuId, date, merchantId, index in attributes], each distinct set once. */
  facts: [string, string, string, number][];
  /** [orderId, index in facts, qty, createdAt, 1 if counted else 0 (held)], in the state's order. */
  orders: [string, number, number, number, 0 | 1][];
  released: [string, number][];
  /** [orderId, index in facts, qty, createdAt, at], in the state's order. */
  noShows: [string, number, number, number, number][];
  /** null for -Infinity (JSON has none). */
  acceptFrom_ms: number | null;
  noShowsFrom_ms: number | null;
}

export function buyerToSnapshot(state: BuyerState): BuyerSnapshot {
  return {
    orders: [...state.orders.values()].map((o) => ({ ...o, attributes: { ...o.attributes } })),
    released: [...state.released.entries()],
    noShows: [...state.noShows.values()].map((n) => ({ ...n, attributes: { ...n.attributes } })),
    acceptFrom_ms: Number.isFinite(state.acceptFrom_ms) ? state.acceptFrom_ms : null,
    noShowsFrom_ms: Number.isFinite(state.noShowsFrom_ms) ? state.noShowsFrom_ms : null,
  };
}

export function buyerToCompactSnapshot(state: BuyerState): BuyerCompactSnapshot {
  const attributes: BuyerCompactSnapshot['attributes'] = [];
  const facts: BuyerCompactSnapshot['facts'] = [];
  // Interned attributes (engine/facts-intern.ts): equal ones are nearly always the same object, so it
  // keys the lookup; equal contents in two objects are only written twice, never confused.
  const index = new Map<Readonly<Record<string, string>>, { at: number; bySku: Map<string, number> }>();
  const indexOf = (o: UsageOrder): number => {
    let a = index.get(o.attributes);
    if (a === undefined) {
      index.set(o.attributes, (a = { at: attributes.length, bySku: new Map() }));
      attributes.push({ ...o.attributes });
    }
    const key = `${o.skuId}\u0000${o.date}\u0000${o.merchantId}`;
    let i = a.bySku.get(key);
    if (i === undefined) {
      a.bySku.set(key, (i = facts.length));
      facts.push([o.skuId, o.date, o.merchantId, a.at]);
    }
    return i;
  };
  const orders: BuyerCompactSnapshot['orders'] = [];
  for (const o of state.orders.values()) orders.push([o.orderId, indexOf(o), o.qty, o.createdAt, o.status === 'counted' ? 1 : 0]);
  const noShows: BuyerCompactSnapshot['noShows'] = [];
  for (const n of state.noShows.values()) noShows.push([n.orderId, indexOf(n), n.qty, n.createdAt, n.at]);
  return {
    format: BUYER_SNAPSHOT_FORMAT,
    attributes,
    facts,
    orders,
    released: [...state.released.entries()],
    noShows,
    acceptFrom_ms: Number.isFinite(state.acceptFrom_ms) ? state.acceptFrom_ms : null,
    noShowsFrom_ms: Number.isFinite(state.noShowsFrom_ms) ? state.noShowsFrom_ms : null,
  };
}

/** The state a snapshot holds, in either format (a journal keeps `restored` events of both). */
export function buyerFromSnapshot(s: BuyerCompactSnapshot | BuyerSnapshot): BuyerState {
  if ('format' in s) return buyerFromCompactSnapshot(s);
  const orders = new Map<string, BuyerOrder>(s.orders.map((o) => [o.orderId, new CountedOrder(o, o.status)]));
  return {
    orders,
    released: s.released.length > 0 ? new Map(s.released) : NONE,
    noShows: s.noShows.length > 0 ? new Map(s.noShows.map((n) => [n.orderId, new RecordedNoShow(n, n.at)])) : NONE,
    acceptFrom_ms: s.acceptFrom_ms ?? -Infinity,
    noShowsFrom_ms: s.noShowsFrom_ms ?? -Infinity,
    ledger: ledgerOf(orders),
  };
}

function buyerFromCompactSnapshot(s: BuyerCompactSnapshot): BuyerState {
  // A format this code does not know would be read as garbage: refuse it (the load fails, 503).
  if (s.format !== BUYER_SNAPSHOT_FORMAT) throw new RangeError(`buyer snapshot format ${String(s.format)} is not known (this code reads ${BUYER_SNAPSHOT_FORMAT})`);
  const facts = s.facts.map(([skuId, date, merchantId, a]) => {
    const attributes = s.attributes[a];
    if (attributes === undefined) throw new RangeError(`buyer snapshot: facts of ${skuId} refer to attributes ${a} of ${s.attributes.length}`);
    return { skuId, date, merchantId, attributes };
  });
  const factsAt = (i: number, orderId: string) => {
    const f = facts[i];
    if (f === undefined) throw new RangeError(`buyer snapshot: order ${orderId} refers to facts ${i} of ${facts.length}`);
    return f;
  };
  const orders = new Map<string, BuyerOrder>();
  for (const [orderId, i, qty, createdAt, counted] of s.orders) {
    orders.set(orderId, new CountedOrder({ orderId, ...factsAt(i, orderId), qty, createdAt }, counted === 1 ? 'counted' : 'held'));
  }
  let noShows: ReadonlyMap<string, NoShow> = NONE;
  if (s.noShows.length > 0) {
    const map = new Map<string, NoShow>();
    for (const [orderId, i, qty, createdAt, at] of s.noShows) map.set(orderId, new RecordedNoShow({ orderId, ...factsAt(i, orderId), qty, createdAt }, at));
    noShows = map;
  }
  return {
    orders,
    released: s.released.length > 0 ? new Map(s.released) : NONE,
    noShows,
    acceptFrom_ms: s.acceptFrom_ms ?? -Infinity,
    noShowsFrom_ms: s.noShowsFrom_ms ?? -Infinity,
    ledger: ledgerOf(orders),
  };
}
