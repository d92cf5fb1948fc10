// Stock invariants of every SKU/date the run touched: never oversold; the engine's reserved and sold
// counts are exactly the orders it lists as holding stock (so nothing is left reserved without an
// order once expiries ran); and no buyer was refused as sold out while stock stayed free.
import type { CheckResult } from '../run/results.ts';
import { stockKey, type EngineView, type ListedOrder } from './engine-view.ts';
import type { RunFacts } from './run-facts.ts';
import { Violations } from './violations.ts';

/** Statuses whose units are reserved, and those whose units are sold. */
const RESERVED = new Set<ListedOrder['status']>(['reserved']);
const SOLD = new Set<ListedOrder['status']>(['paid', 'delivered']);

function unitsByKey(view: EngineView): Map<string, { reserved: number; sold: number }> {
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

export function noOversell(facts: RunFacts, view: EngineView): CheckResult {
  const v = new Violations();
  const units = unitsByKey(view);
  for (const { skuId, date } of facts.stock) {
    const key = stockKey(skuId, date);
    const inv = view.inventory.get(key);
    if (!inv) continue;
    if (inv.reserved + inv.sold > inv.total) v.add(`${key}: reserved ${inv.reserved} + sold ${inv.sold} > total ${inv.total}`);
    if (inv.reserved < 0 || inv.sold < 0 || inv.available < 0) v.add(`${key}: a negative count (${JSON.stringify(inv)})`);
    const u = units.get(key);
    if (u && u.reserved + u.sold > inv.total) v.add(`${key}: the orders hold ${u.reserved + u.sold} units of a total of ${inv.total}`);
  }
  return v.result('no SKU/date oversold', `reserved + sold ≤ total, by the live actors and by the orders, on ${facts.stock.length} SKU/dates`);
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
 * A sold-out answer is wrong when the stock it refused was still free at the end and nothing was
 * released after it: without a release, taken stock only grows, so what is free at the end was
 * free when it was refused. Releases: cancels (by their answer), expiries (by the time the engine
 * recorded them) and stock changes, each with `margin_ms` for the two clocks.
 */
export function noUndersell(facts: RunFacts, view: EngineView, margin_ms: number): CheckResult {
  const v = new Violations();
  const lastRelease = new Map<string, number>();
  const later = (key: string, at_ms: number) => lastRelease.set(key, Math.max(lastRelease.get(key) ?? -Infinity, at_ms));
  for (const c of facts.cancels) {
    const o = view.orders.get(c.orderId) ?? facts.orders.get(c.orderId);
    if (o) later(stockKey(o.skuId, o.date), c.answered_ms);
  }
  for (const o of view.orders.values()) {
    if (o.status === 'expired' || o.status === 'refund_required' || o.status === 'cancelled') {
      later(stockKey(o.skuId, o.date), Date.parse(o.updatedAt) - facts.started_wall_ms);
    }
  }
  for (const [key, times] of facts.stockChanges_ms) for (const t of times) later(key, t);
  let judged = 0;
  for (const s of facts.soldOut) {
    const released = lastRelease.get(s.key) ?? -Infinity;
    if (released + margin_ms >= s.sent_ms) continue;
    judged++;
    const inv = view.inventory.get(s.key);
    if (inv && inv.available >= s.qty) v.add(`line ${s.line}: ${s.key} answered sold_out for ${s.qty}, yet ${inv.available} stayed free and nothing was released after it`);
  }
  return v.result('no SKU/date undersold', `${facts.soldOut.length} sold_out answers, ${judged} of them with no release after them, against the stock free at the end`);
}
