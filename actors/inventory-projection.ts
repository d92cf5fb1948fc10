// What each inventory event means for the order read model: the order row and a history line when
// an order settles (a live reservation is answered by its actor, so reserving writes no row), and
// the idempotency record that lets an Idempotency-Key replay its first answer. Computed from the
// state *before* the event (a release needs the reservation it releases), both when an actor
// decides and when it replays its journal after a restart, so the two can never disagree.

import { orderCreatedBody, type IdempotencyMark, type InventoryEvent, type InventoryState } from '../engine/index.ts';
import type { IdempotencyRow, OrderHistoryRow, OrderRow, OrderStatusRow } from '../persistence/ports.ts';

export interface OrderChange {
  row: OrderRow;
  history: OrderHistoryRow;
}

export interface ProjectedEvent {
  seq: number;
  change?: OrderChange;
  idempotency?: IdempotencyRow;
}

export const SOLD_OUT_MESSAGE = 'not enough stock left for the requested qty';

export function projectEvent(
  before: InventoryState,
  event: InventoryEvent,
  seq: number,
  stream: string,
  skuId: string,
  date: string,
): ProjectedEvent | undefined {
  switch (event.type) {
    case 'reserved': {
      if (!event.idempotency) return undefined;
      return { seq, idempotency: answered(event.userId, event.idempotency, 201, orderCreatedBody({ ...event, skuId, date }), event.createdAt) };
    }
    case 'released':
    case 'sold': {
      const r = before.reservations.get(event.orderId);
      if (!r) return undefined;
      const status: OrderStatusRow = event.type === 'sold' ? 'paid' : event.reason;
      const row: OrderRow = {
        orderId: r.orderId,
        stream,
        userId: r.userId,
        skuId,
        date,
        qty: r.qty,
        amountCents: r.amountCents,
        status,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
        updatedAt: event.at,
        seq,
      };
      return { seq, change: { row, history: history(row, seq, event.type === 'sold' ? 'paid' : event.reason) } };
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

function history(row: OrderRow, seq: number, cause: string): OrderHistoryRow {
  return { orderId: row.orderId, stream: row.stream, seq, status: row.status, at: row.updatedAt, cause };
}
