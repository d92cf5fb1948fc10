// Order invariants: every 201 is an order the engine still has, as answered; every paid order was
// delivered exactly once, each card key to one order; payment callbacks were answered as the
// contract says; and the engine answered no 5xx but the contract's 503s.
import type { CheckResult } from '../run/results.ts';
import { isOrderLine } from '../recording/format.ts';
import { cardKeyPools, keysLeft } from './card-key-pools.ts';
import { releasedAt, type EngineView } from './engine-view.ts';
import type { KeyedRequest, PaymentAnswer, RunFacts } from './run-facts.ts';
import { Violations } from './violations.ts';

export function ordersDurable(facts: RunFacts, view: EngineView): CheckResult {
  const v = new Violations();
  for (const f of facts.orders.values()) {
    const o = view.orders.get(f.orderId);
    if (!o) {
      v.add(`line ${f.line}: order ${f.orderId} was answered 201 but the engine does not list it`);
      continue;
    }
    if (o.userId !== f.user || o.skuId !== f.skuId || o.date !== f.date || o.qty !== f.qty) {
      v.add(`line ${f.line}: order ${f.orderId} is ${o.userId} ${o.skuId}/${o.date} ×${o.qty}, answered as ${f.user} ${f.skuId}/${f.date} ×${f.qty}`);
    }
  }
  // Each order answered to one buyer: a 201 carrying another buyer's order (an idempotency answer
  // keyed without its buyer) is found whichever of its answers came last.
  const buyerOf = new Map<string, string>();
  for (const f of facts.log.orders.values()) {
    const first = buyerOf.get(f.orderId);
    if (first === undefined) buyerOf.set(f.orderId, f.user);
    else if (first !== f.user) v.add(`line ${f.line}: order ${f.orderId} was answered to ${f.user}, and to ${first} before`);
  }
  // A run whose orders mostly did not reach the engine proves nothing: buyer tokens it refuses (a
  // wrong secret on --target) or most orders shed with 503. Only buyers' orders the recording did not
  // see refused so (a recorded request without a valid token is replayed without one, and refused again).
  let sent = 0;
  let turnedAway = 0;
  for (const r of facts.log.results) {
    const line = facts.log.lines[r.line];
    if (!line || !isOrderLine(line) || line.user === undefined) continue;
    if (line.outcome?.status === 401 || line.outcome?.status === 503) continue;
    sent++;
    if (r.status === 401 || r.status === 503) turnedAway++;
  }
  if (turnedAway * 2 > sent) v.add(`${turnedAway} of ${sent} order requests were answered 401 or 503: the engine refused the run's buyers or shed most orders`);
  // At the SKU's price when it was made: the one the latest of the run's SKU PUTs answered before it
  // set (not judged while one was in flight, nor before the run's first if it has any: the price then
  // is unknown), else the price now.
  for (const o of view.orders.values()) {
    const price = priceAt(facts, view, o.skuId, Date.parse(o.createdAt));
    if (price !== undefined && o.amountCents !== price * o.qty) v.add(`order ${o.orderId} is ${o.amountCents} cents for ${o.qty} × ${price}`);
  }
  // And the other way: every order the engine made was answered 201 to some request of the run. One
  // that was not was made for a request answered with an error (a 503 whose write committed after
  // all), which "changed nothing" by the contract.
  let unanswered = 0;
  for (const o of view.orders.values()) {
    if (facts.orders.has(o.orderId)) continue;
    unanswered++;
    v.add(`order ${o.orderId} (${o.userId} ${o.skuId}/${o.date} ×${o.qty}) was made, but no request of the run was answered 201 with it`);
  }
  return v.result('every 201 is an order', `${facts.orders.size} orders answered 201, each listed by the engine with its buyer, SKU/date and qty; ${view.orders.size} listed, ${unanswered} of them never answered 201`);
}

/** The price of one unit of `skuId` at `at` (wall ms) as far as the run knows (see ordersDurable); undefined if unknown. */
function priceAt(facts: RunFacts, view: EngineView, skuId: string, at: number): number | undefined {
  const puts = facts.skuPrices.get(skuId);
  if (!puts || puts.length === 0) return view.skus.get(skuId)?.priceCents;
  let price: number | undefined;
  for (const p of puts) {
    if (facts.started_wall_ms + p.answered_ms < at) price = p.priceCents;
    else if (facts.started_wall_ms + p.sent_ms <= at) return undefined; // in flight: either
  }
  return price;
}

/**
 * Delivered once, to the right count, card keys never shared; `paid` left only where delivery waits:
 * a manual SKU's merchant, or a card-key pool with too few keys left (card-key-pools.ts), which is
 * reported, not failed.
 */
export function deliveredOnce(facts: RunFacts, view: EngineView): CheckResult {
  const v = new Violations();
  const keyOwner = new Map<number, string>();
  const pools = cardKeyPools(facts, view);
  let delivered = 0;
  let paid = 0;
  let awaitingKeys = 0;
  for (const o of view.orders.values()) {
    const sku = view.skus.get(o.skuId);
    if (o.status === 'paid' || o.status === 'delivered') paid++;
    if (o.status === 'paid' && sku?.delivery !== 'manual') {
      const pool = sku?.delivery === 'card_key' ? pools.get(o.skuId) : undefined;
      if (pool?.dry) awaitingKeys++;
      else v.add(`${o.orderId} (${o.skuId}/${o.date}) is paid but was never delivered${pool ? ` (${keysLeft(pool)} card keys of ${o.skuId} unassigned)` : ''}`);
    }
    if (o.status !== 'delivered') {
      if (o.deliveries > 0) v.add(`${o.orderId} is ${o.status} but its history shows ${o.deliveries} deliveries`);
      continue;
    }
    delivered++;
    if (o.deliveries !== 1) v.add(`${o.orderId} was delivered ${o.deliveries} times`);
    const d = o.delivery;
    if (d && 'cardKeyIds' in d) {
      if (d.cardKeyIds.length !== o.qty) v.add(`${o.orderId} got ${d.cardKeyIds.length} card keys for qty ${o.qty}`);
      if (new Set(d.cardKeyIds).size !== d.cardKeyIds.length) v.add(`${o.orderId} got the same card key twice`);
      for (const id of d.cardKeyIds) {
        const other = keyOwner.get(id);
        if (other !== undefined && other !== o.orderId) v.add(`card key #${id} went to ${other} and to ${o.orderId}`);
        keyOwner.set(id, o.orderId);
      }
    } else if (d && 'tickets' in d) {
      if (d.tickets !== o.qty) v.add(`${o.orderId} got ${d.tickets} tickets for qty ${o.qty}`);
    } else if (sku?.delivery !== 'manual') {
      v.add(`${o.orderId} is delivered but shows no delivery`);
    }
  }
  // Orders the run saw paid must not have gone back.
  for (const p of facts.payments) {
    if (p.answer_status !== 200 || (p.order_status !== 'paid' && p.order_status !== 'delivered')) continue;
    const o = view.orders.get(p.orderId);
    if (o && o.status !== 'paid' && o.status !== 'delivered') v.add(`${p.orderId} was answered ${p.order_status} to a payment, and is now ${o.status}`);
  }
  const dry = [...pools.values()].filter((p) => p.dry).map((p) => `${p.skuId}: ${keysLeft(p)} left`);
  const waiting = awaitingKeys > 0 ? `; ${awaitingKeys} awaiting card keys, as the contract allows (too few left: ${dry.join(', ')})` : '';
  return v.result('every paid order delivered exactly once', `${paid} paid orders, ${delivered} delivered, ${keyOwner.size} card keys each to one order${waiting}`);
}

/**
 * Each card key and ticket code to one order, as the buyers see them (EngineView.goods: read with each
 * buyer's token once settled): a delivered order is shown as many as its qty, all distinct; no card
 * key of a SKU and no ticket code is shown to two orders; and when the run's uploads account for every
 * key a SKU holds, each key shown is one of them (a key decrypted wrong is not). Keys and codes are
 * never printed.
 */
export function goodsToOneOrder(facts: RunFacts, view: EngineView): CheckResult {
  const v = new Violations();
  const owner = new Map<string, string>();
  let read = 0;
  let keys = 0;
  let codes = 0;
  for (const o of view.orders.values()) {
    const delivery = view.skus.get(o.skuId)?.delivery;
    if (o.status !== 'delivered' || (delivery !== 'card_key' && delivery !== 'ticket')) continue;
    const goods = view.goods?.get(o.orderId);
    if (!goods) {
      v.add(`${o.orderId} is delivered, but what its buyer is shown was not read`);
      continue;
    }
    if ('unreadable' in goods) {
      v.add(goods.unreadable);
      continue;
    }
    read++;
    const what = delivery === 'card_key' ? 'card key' : 'ticket code';
    if (goods.items.length !== o.qty) v.add(`${o.orderId}'s buyer is shown ${goods.items.length} ${what}s for qty ${o.qty}`);
    if (new Set(goods.items).size !== goods.items.length) v.add(`${o.orderId}'s buyer is shown one ${what} twice`);
    // Only when every key the SKU holds came from the run (its uploads' answers say so): keys uploaded
    // before the run (against --target) are unknown here.
    const uploaded = delivery === 'card_key' ? facts.uploadedKeys.get(o.skuId) : undefined;
    const known = uploaded !== undefined && (facts.cardKeys.get(o.skuId) ?? Infinity) <= uploaded.size ? uploaded : undefined;
    for (const item of goods.items) {
      if (delivery === 'card_key') keys++;
      else codes++;
      if (known && !known.has(item) && facts.unsureKeys.get(o.skuId)?.has(item) !== true) v.add(`${o.orderId}'s buyer is shown a card key no upload of ${o.skuId} held`);
      const id = delivery === 'card_key' ? `k\u0000${o.skuId}\u0000${item}` : `t\u0000${item}`;
      const other = owner.get(id);
      if (other === undefined) owner.set(id, o.orderId);
      else if (other !== o.orderId) v.add(`${other} and ${o.orderId} are shown the same ${what}`);
    }
  }
  return v.result('card keys and ticket codes each to one order', `${read} delivered orders read as their buyers see them: ${keys} card keys and ${codes} ticket codes, each shown to one order`);
}

/**
 * Every correctly signed, well-formed callback is answered 200 (however repeated or late); one
 * with a wrong signature 401. A succeeded callback on a reserved order pays it; on a cancelled or
 * expired one it asks for a refund and takes no stock. A signed callback the engine shed with the
 * contract's 503 (`overloaded`, `unavailable`) is counted, not failed: the provider retries it
 * (the replay does not), and whether it applied is unknown to its sender; more than half of them shed
 * fails the check (an engine that takes no payment would otherwise pass).
 */
export function paymentsHonoured(facts: RunFacts, view: EngineView, margin_ms = 0): CheckResult {
  const v = new Violations();
  let refunds = 0;
  let shed = 0;
  let signed = 0;
  /** The run's correctly signed `succeeded` callbacks of the order's amount, by order. */
  const good = new Map<string, PaymentAnswer[]>();
  for (const p of facts.payments) {
    if (!p.signed || p.status !== 'succeeded' || !p.amount_ok) continue;
    const list = good.get(p.orderId);
    if (list) list.push(p);
    else good.set(p.orderId, [p]);
  }
  for (const p of facts.payments) {
    if (p.signed) signed++;
    if (p.signed && p.answer_status === 503 && (p.answer_error === 'overloaded' || p.answer_error === 'unavailable')) {
      shed++;
      continue;
    }
    const expected = p.signed ? 200 : 401;
    if (p.answer_status !== expected) v.add(`line ${p.line}: a ${p.signed ? 'signed' : 'badly signed'} callback for ${p.orderId} was answered ${p.answer_status}, not ${expected}`);
    if (p.order_status === 'refund_required') refunds++;
    if (!p.signed && p.answer_status === 401) continue;
    const o = view.orders.get(p.orderId);
    if (p.status === 'succeeded' && p.amount_ok && p.answer_status === 200 && o && (o.status === 'reserved' || o.status === 'cancelled' || o.status === 'expired')) {
      v.add(`line ${p.line}: a succeeded callback for ${p.orderId} was answered, yet the order is ${o.status} (not paid, not refund_required)`);
    }
  }
  // Shedding some under a storm is the contract's; shedding most is a sale that would not hold.
  if (shed * 2 > signed) v.add(`${shed} of ${signed} signed callbacks were shed with 503: the engine did not take most payments`);
  for (const o of view.orders.values()) {
    const callbacks = good.get(o.orderId) ?? [];
    // Paid by a payment the run made: a correctly signed `succeeded` callback of its amount with that
    // payment id (whatever it was answered: one shed with 503, or unanswered, may have applied). A free
    // order (amount 0) is paid without one.
    if ((o.status === 'paid' || o.status === 'delivered') && o.amountCents > 0) {
      const paying = callbacks.filter((p) => p.paymentId === o.paymentId);
      if (paying.length === 0) {
        v.add(`${o.orderId} is ${o.status} by payment ${o.paymentId}, yet no correctly signed succeeded callback of its amount with that id was sent`);
      } else if (paying.every((p) => facts.started_wall_ms + p.sent_ms > Date.parse(o.expiresAt) + margin_ms)) {
        // Every callback that could have paid it was sent after its reservation expired: the engine must
        // have expired it first (refund_required), whether or not its expiry pass had run yet.
        v.add(`${o.orderId} is ${o.status} by payment ${o.paymentId}, whose callbacks were all sent after the reservation expired at ${o.expiresAt}`);
      }
    }
    // Not ended early: an expiry at its time at the soonest, a refund only for a payment that came
    // after the order had ended (its cancel or expiry).
    const ended = o.status === 'expired' || o.status === 'refund_required' ? releasedAt(o) : undefined;
    if (ended === undefined) continue;
    // A cancel of it that may have applied: answered 2xx, or 5xx or nothing (whose own check says so);
    // one refused 4xx changed nothing (an engine expiring early has the buyer's cancel refused 409).
    const cancelled = facts.cancels.some((c) => c.orderId === o.orderId && !(c.status >= 400 && c.status < 500));
    if (!cancelled && ended < Date.parse(o.expiresAt) - margin_ms) {
      v.add(`${o.orderId} ended (${o.status}) at ${new Date(ended).toISOString()}, before its expiry at ${o.expiresAt}, and no cancel of it was answered`);
    }
    if (o.status === 'refund_required') {
      const refunded = callbacks.filter((p) => p.answer_status === 200 && p.order_status === 'refund_required');
      let first = Infinity;
      for (const p of refunded) first = Math.min(first, facts.started_wall_ms + p.answered_ms);
      if (first !== Infinity && ended > first + margin_ms) {
        v.add(`${o.orderId} was answered refund_required at ${new Date(first).toISOString()}, before it ended at ${new Date(ended).toISOString()}`);
      }
    }
  }
  return v.result('payment callbacks honoured', `${facts.payments.length} callbacks (duplicates, failures and late ones included), ${refunds} answered refund_required${shed > 0 ? `, ${shed} shed with 503 (overloaded/unavailable)` : ''}`);
}

/**
 * A cancel answered 200 left the order cancelled (or refund_required: a payment that came after it);
 * the requests of one (buyer, Idempotency-Key, body) were answered one order, never two.
 */
export function cancelsAndKeysHonoured(facts: RunFacts, view: EngineView): CheckResult {
  const v = new Violations();
  let cancelled = 0;
  for (const c of facts.cancels) {
    if (c.status !== 200) continue;
    cancelled++;
    const o = view.orders.get(c.orderId);
    if (o && o.status !== 'cancelled' && o.status !== 'refund_required') v.add(`${c.orderId} was answered cancelled, and is now ${o.status}`);
  }
  for (const [key, ids] of facts.keyedOrders) {
    if (ids.size > 1) v.add(`one Idempotency-Key (${key.split('\n').slice(0, 2).join(', ')}) was answered ${ids.size} different orders: ${[...ids].join(', ')}`);
  }
  // "Same key, same body: the first answer; another body: 422." Of the requests of one (buyer, key),
  // those whose answer is a decision (not 401 before the key was looked at, not 429 turned away, not
  // a 5xx or no answer: whether those applied is unknown, and the same body runs again) are answered
  // alike for one body; and at most one body gets a 201.
  for (const [key, requests] of facts.keyedRequests) {
    const who = key.split('\n').join(', ');
    const ordered = new Set<string>();
    const firstOf = new Map<string, KeyedRequest>();
    for (const r of requests) {
      if (r.status === 0 || r.status === 401 || r.status === 429 || r.status >= 500) continue;
      if (r.status === 201) ordered.add(r.body);
      const first = firstOf.get(r.body);
      if (!first) firstOf.set(r.body, r);
      else if (first.status !== r.status) v.add(`line ${r.line}: a repeat of the keyed order request of line ${first.line} (${who}) was answered ${r.status}, the first ${first.status}`);
    }
    if (ordered.size > 1) v.add(`one Idempotency-Key (${who}) was answered 201 for ${ordered.size} different bodies: another body with a used key is 422`);
  }
  return v.result('cancels and Idempotency-Keys honoured', `${cancelled} cancels answered 200 still cancelled; ${facts.keyedOrders.size} keyed requests answered one order each`);
}

/** 5xx only as the contract's 503 `overloaded` or `unavailable`; every request answered. */
export function noUnexpected5xx(facts: RunFacts): CheckResult {
  const v = new Violations();
  let shed = 0;
  for (const r of facts.log.results) {
    if (r.status === 0) v.add(`line ${r.line} (${r.route}) got no answer`);
    else if (r.status === 503 && (r.error === 'overloaded' || r.error === 'unavailable')) shed++;
    else if (r.status >= 500) v.add(`line ${r.line} (${r.route}) answered ${r.status} ${r.error ?? ''}`.trim());
  }
  return v.result('no 5xx but the contract\'s 503s', `${facts.log.results.length} answers, ${shed} of them 503 overloaded/unavailable`);
}
