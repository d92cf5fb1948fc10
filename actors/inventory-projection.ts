// What each inventory event means outside its actor: the order row and a history line when an order
// settles (a live reservation is answered by its actor, so reserving writes no row), the idempotency
// record that lets an Idempotency-Key replay its first answer, and the event merchants and the
// delivery consumer receive (order.reserved / paid / cancelled / expired). Computed from the state
// *before* the event (a release needs the reservation it releases), both when an actor decides and
// when it replays its journal after a restart, so the two can never disagree.

import { orderCreatedBody, type IdempotencyMark, type InventoryEvent, type InventoryState } from '../engine/index.ts';
import type { IdempotencyRow, OrderHistoryRow, OrderRow, OrderStatusRow, OutboxEvent } from '../persistence/ports.ts';
import { orderOutboxEvent } from './order-events.ts';

export interface OrderChange {
  row: OrderRow;
  /** Absent when the change adds nothing to the order's history (e.g. recorded by another stream). */
  history?: OrderHistoryRow;
}

export interface ProjectedEvent {
  seq: number;
  change?: OrderChange;
  idempotency?: IdempotencyRow;
  /** The event for the outside world (merchants, the delivery consumer), if any. */
  outbox?: OutboxEvent;
}

/** Where the events of one SKU/date go. */
export interface StreamContext {
  stream: string;
  skuId: string;
  date: string;
  /** The SKU's merchant (names the events' subject). */
  merchantId: string;
}

export const SOLD_OUT_MESSAGE = 'not enough stock left for the requested qty';

export function projectEvent(before: InventoryState, event: InventoryEvent, seq: number, c: StreamContext): ProjectedEvent | undefined {
  switch (event.type) {
    case 'reserved': {
      const facts = { ...event, skuId: c.skuId, date: c.date, status: 'reserved' };
      const projected: ProjectedEvent = { seq, outbox: orderOutboxEvent('order.reserved', c.stream, seq, event.createdAt, c.merchantId, facts) };
      if (event.idempotency) {
        projected.idempotency = answered(event.userId, event.idempotency, 201, orderCreatedBody({ ...event, skuId: c.skuId, date: c.date }), event.createdAt);
      }
      return projected;
    }
    case 'released':
    case 'sold': {
      const r = before.reservations.get(event.orderId);
      if (!r) return undefined;
      const status: OrderStatusRow = event.type === 'sold' ? 'paid' : event.reason;
      const row: OrderRow = {
        orderId: r.orderId,
        stream: c.stream,
        userId: r.userId,
        skuId: c.skuId,
        date: c.date,
        qty: r.qty,
        amountCents: r.amountCents,
        status,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
        updatedAt: event.at,
        seq,
        paymentId: event.type === 'sold' ? event.paymentId : null,
        delivery: null,
      };
      const cause = event.type === 'sold' ? `payment ${event.paymentId}` : event.reason;
      const extra = event.type === 'sold' ? { paymentId: event.paymentId } : {};
      return {
        seq,
        change: { row, history: { orderId: row.orderId, stream: c.stream, seq, status, at: event.at, cause } },
        outbox: orderOutboxEvent(event.type === 'sold' ? 'order.paid' : `order.${event.reason}`, c.stream, seq, event.at, c.merchantId, row, extra),
      };
    }
    case 'refused':
      return { seq, idempotency: answered(event.userId, event.idempotency, 409, { error: 'sold_out', message: SOLD_OUT_MESSAGE }, event.at) };
    case 'total_set':
      return undefined;
  }
}

/** The first answer to an Idempotency-Key, as the read model keeps it. */
function answered(userId: string, mark: IdempotencyMark, status: number, body: unknown, at: number): IdempotencyRow {
  return { userId, key: mark.key, requestHash: mark.hash, status, body, createdAt: at };
}
