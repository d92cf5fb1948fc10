// The first purchase rule counts the orders placed while there was none (API.md "Purchase rules":
// counted orders are reserved, paid and delivered ones). With an empty rule book, orders skip the
// limit actors (a sale without rules pays nothing for them). When a rule arrives, the rule book turns
// the purchase saga on (every new order is held by its buyer, with no rule in force yet) and runs
// this adoption, which has each buyer's limit actor take in its counted orders created since the
// book became empty; only then is the rule in force (actors/rule-book.ts):
//
// 1. note the SKU/dates whose inventory actor is in memory: an order placed without the saga sends
//    its reserve synchronously, activating its actor, so every such reserve still on its way is in
//    one of their mailboxes (and none is sent any more); an actor out of memory has no live
//    reservation (inventory actors passivate only then) and everything it did is projected;
// 2. wait until the projector has written everything durable so far (live counts, settled orders);
// 3. each of those SKU/dates, and each the read model lists with live reservations, makes its live
//    reservations created since `from` limited (its mailbox is in order: after the reserves sent
//    before), so their release or sale is told to the buyer from now on, and their buyers adopt them
//    as held (a release told before the adoption leaves a tombstone that the adoption respects; a
//    sale, the actor's own look at the order's fate);
// 4. wait for the projector again: an order sold or delivered before its SKU/date was limited is in
//    the read model now;
// 5. the buyers adopt the paid and delivered orders created since `from` as counted (paid, then
//    delivered: an order delivered meanwhile is found by the second pass).
// Every step is idempotent, so a failed adoption is simply run again. Orders older than the new rules
// can reach (and than the month a prune always keeps) are left out: a prune would drop them at once.

import {
  orderIdFloor,
  PRUNE_KEEP_MIN_MS,
  reachOf,
  splitStream,
  type BuyerOrderFacts,
  type BuyerReply,
  type Reservation,
  type RuleSet,
} from '../engine/index.ts';
import type { OrderRow, Sku } from '../persistence/ports.ts';
import { buyerOrderFacts } from './order-service.ts';
import { inParallel } from './in-parallel.ts';

export interface AdoptionDeps {
  /** SKU/dates whose inventory actor is in memory. */
  activeStreams(): string[];
  /** Resolves once everything made durable before the call is in the read model. */
  projected(): Promise<void>;
  /** SKU/dates that had live reservations when last projected. */
  streamsWithReservations(): Promise<string[]>;
  /** Makes the SKU/date's live reservations created at or after `from_ms` limited; returns them. */
  limitReservations(stream: string, from_ms: number): Promise<Reservation[]>;
  ordersByStatus(status: 'paid' | 'delivered', limit: number, afterOrderId: string): Promise<OrderRow[]>;
  sku(skuId: string): Sku | undefined;
  adopt(userId: string, order: BuyerOrderFacts, status: 'held' | 'counted'): Promise<BuyerReply>;
  now(): number;
}

export interface AdoptionReport {
  /** Orders created at or after this were looked at. */
  from_ms: number;
  streams: number;
  /** Orders a buyer took in (or knew already) as held, and as counted. */
  held: number;
  counted: number;
  /** Orders no buyer took in: released meanwhile, older than the buyer keeps, or beyond its maximum. */
  skipped: number;
}

/** Adoptions in flight at once (each one buyer actor's ask). */
export const ADOPTIONS_IN_FLIGHT = 64;
/** Read-model orders per page. */
const PAGE = 1_000;

/** Adopts the counted orders created since `emptySince_ms` for `rules` (about to be in force). */
export async function adoptOrdersPlacedWithoutRules(deps: AdoptionDeps, emptySince_ms: number, rules: RuleSet): Promise<AdoptionReport> {
  const active = deps.activeStreams();
  await deps.projected();
  const now = deps.now();
  // Inclusive: the empty time's own millisecond may also hold orders placed while the last rule still
  // existed (held already: adopting them again changes nothing).
  const from_ms = Math.max(emptySince_ms, Math.min(reachOf(rules, now, -Infinity).orders_ms, now - PRUNE_KEEP_MIN_MS));
  const report: AdoptionReport = { from_ms, streams: 0, held: 0, counted: 0, skipped: 0 };
  const tally = (reply: BuyerReply) => {
    if (reply.outcome !== 'adopted') report.skipped++;
    else if (reply.status === 'held') report.held++;
    else report.counted++;
  };

  for (const stream of new Set([...active, ...(await deps.streamsWithReservations())])) {
    const reservations = await deps.limitReservations(stream, from_ms);
    if (reservations.length === 0) continue;
    report.streams++;
    const [skuId, date] = splitStream(stream);
    const sku = deps.sku(skuId);
    await inParallel(reservations, ADOPTIONS_IN_FLIGHT, (r) => deps.adopt(r.userId, buyerOrderFacts(r.orderId, skuId, date, sku, r.qty, r.createdAt), 'held').then(tally));
  }

  await deps.projected();
  const floor = Number.isFinite(from_ms) ? orderIdFloor(from_ms) : '';
  for (const status of ['paid', 'delivered'] as const) {
    let after = floor;
    for (;;) {
      const page = await deps.ordersByStatus(status, PAGE, after);
      await inParallel(page, ADOPTIONS_IN_FLIGHT, (o) => deps.adopt(o.userId, buyerOrderFacts(o.orderId, o.skuId, o.date, deps.sku(o.skuId), o.qty, o.createdAt), 'counted').then(tally));
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.orderId;
    }
  }
  return report;
}
