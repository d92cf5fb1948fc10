// The bodies operators read, shared by the HTTP ops routes and their NATS twins (API.md "Ops"), so
// the two can never drift apart.
import { isoTime, type OrderDelivery } from '../engine/index.ts';
import type { OrderRow } from '../persistence/ports.ts';
import type { InventoryInspection } from './inventory-actor.ts';
import type { BuyerInspection } from './limit-actor.ts';

/** GET /ops/inventory/{skuId}/{date} and `stampede.ops.inventory.get`. */
export function inventoryOpsView(skuId: string, date: string, v: InventoryInspection & { shard: number }, nodeId: string, mailbox: number) {
  return {
    skuId,
    date,
    total: v.total,
    reserved: v.reserved,
    sold: v.sold,
    available: v.available,
    // Sold units whose write committed (sales still in flight left out): what reconciliation's
    // stock_mismatch compares with the read model's paid and delivered orders.
    durableSold: v.durableSold,
    shard: v.shard,
    node: nodeId,
    journalSeq: v.journalSeq,
    snapshotSeq: v.snapshotSeq,
    mailbox,
    projectedSeq: v.projectedSeq,
    liveReservations: v.liveReservations,
    pendingEvents: v.pendingEvents,
    writeInFlight: v.writeInFlight,
  };
}

/**
 * What the ops listing shows of a delivery: what was delivered, never the secret itself. Card keys by
 * their row ids (each key to one order is checkable), tickets by their count, a merchant's payload not
 * at all (it may carry codes of its own).
 */
export type DeliveryOpsView = { cardKeyIds: number[] } | { tickets: number } | { manual: true };

export function deliveryOpsView(delivery: OrderDelivery): DeliveryOpsView {
  switch (delivery.kind) {
    case 'card_key':
      return { cardKeyIds: [...delivery.keyIds] };
    case 'ticket':
      return { tickets: delivery.codes.length };
    case 'manual':
      return { manual: true };
  }
}

/** One order of GET /ops/orders?skuId&date: the read model's row, times as ISO strings. */
export function orderListingView(o: OrderRow, deliveries: number) {
  return {
    orderId: o.orderId,
    userId: o.userId,
    skuId: o.skuId,
    date: o.date,
    qty: o.qty,
    amountCents: o.amountCents,
    status: o.status,
    createdAt: isoTime(o.createdAt),
    expiresAt: isoTime(o.expiresAt),
    updatedAt: isoTime(o.updatedAt),
    paymentId: o.paymentId,
    deliveries,
    ...(o.delivery ? { delivery: deliveryOpsView(o.delivery) } : {}),
    ...(o.visit ? { visit: { kind: o.visit.kind, at: isoTime(o.visit.at) } } : {}),
  };
}

/**
 * GET /ops/buyers/{userId} and `stampede.ops.buyer.get`: the limit actor's view with its times as
 * ISO-8601 UTC strings (API.md: "Times are ISO-8601 UTC strings"), as every other body gives them.
 */
export function buyerOpsView(v: BuyerInspection) {
  const withIsoTimes = <T extends object>(o: T): T => {
    const out = { ...o } as Record<string, unknown>;
    for (const k of ['createdAt', 'at'] as const) if (typeof out[k] === 'number') out[k] = isoTime(out[k] as number);
    return out as T;
  };
  return { ...v, holds: v.holds.map(withIsoTimes), counted: v.counted.map(withIsoTimes), noShows: v.noShows.map(withIsoTimes) };
}
