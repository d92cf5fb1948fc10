// What each inventory event means outside its actor: the order row and a history line when an order
// settles (a live reservation is answered by its actor, so reserving writes no row), the idempotency
// record that lets an Idempotency-Key replay its first answer. Computed from the state
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
      // The hottest path of a sale: nothing at all unless an Idempotency-Key must be remembered.
      if (!event.idempotency) return undefined;
      return { seq, idempotency: answered(event.userId, event.idempotency, 201, orderCreatedBody(event, c.skuId, c.date), event.createdAt) };
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
      return { seq, change: { row, history: { orderId: row.orderId, stream: c.stream, seq, status, at: event.at, cause } } };
    }
    case 'refused':
      return { seq, idempotency: answered(event.userId, event.idempotency, 409, { error: 'sold_out', message: SOLD_OUT_MESSAGE }, event.at) };
    case 'total_set':
    case 'keys_counted':
    case 'limited':
    case 'fenced':
      return undefined;
  }
}

// ---- events for the outside world ------------------------------------------------------------
// A SKU/date's events reach the outbox as one row per journal write naming its seq range (see
// actors/journal-outbox.ts): a flash sale writes no outbox row per reservation. The events are made
// from the journal when read, by these functions, so they are the same however often they are made.

/** Bits of the event types a range of a SKU/date's journal holds, so a reader can skip a range none of whose events it wants. */
export const OUTBOX_KIND = { reserved: 1, paid: 2, cancelled: 4, expired: 8 } as const;

const KIND_TYPES = Object.entries(OUTBOX_KIND) as [keyof typeof OUTBOX_KIND, number][];

/** The outbox bit of an event (0: the outside world does not hear of it). */
export function outboxKindOf(event: InventoryEvent): number {
  switch (event.type) {
    case 'reserved':
      return OUTBOX_KIND.reserved;
    case 'sold':
      return OUTBOX_KIND.paid;
    case 'released':
      return event.reason === 'cancelled' ? OUTBOX_KIND.cancelled : OUTBOX_KIND.expired;
    default:
      return 0;
  }
}

/** The order event types (`order.paid`, ...) of the bits in `kinds`. */
export function outboxTypesOf(kinds: number): string[] {
  return KIND_TYPES.filter(([, bit]) => (kinds & bit) !== 0).map(([name]) => `order.${name}`);
}

/**
 * `o` (a reservation, or the event that ended one) as an order of this SKU/date in `status`: what
 * `{ ...o, skuId, date, status }` gives, built with Object.assign — a spread followed by keys the
 * object lacks makes a hidden class per call (docs/performance.md, "Session 10").
 */
export function asStreamOrder<T extends object, S extends string>(o: T, c: StreamContext, status: S): T & { skuId: string; date: string; status: S } {
  return Object.assign({}, o, { skuId: c.skuId, date: c.date, status });
}

/** The event the outside world receives for journal event `seq` of a SKU/date, if any (those of a non-zero outboxKindOf). */
export function inventoryOutboxEvent(event: InventoryEvent, seq: number, c: StreamContext): OutboxEvent | undefined {
  switch (event.type) {
    case 'reserved':
      return orderOutboxEvent('order.reserved', c.stream, seq, event.createdAt, c.merchantId, asStreamOrder(event, c, 'reserved'));
    case 'sold':
      return orderOutboxEvent('order.paid', c.stream, seq, event.at, c.merchantId, asStreamOrder(event, c, 'paid'), { paymentId: event.paymentId });
    case 'released':
      return orderOutboxEvent(`order.${event.reason}`, c.stream, seq, event.at, c.merchantId, asStreamOrder(event, c, event.reason));
    default:
      return undefined;
  }
}

/** The first answer to an Idempotency-Key, as the read model keeps it. */
function answered(userId: string, mark: IdempotencyMark, status: number, body: unknown, at: number): IdempotencyRow {
  return { userId, key: mark.key, requestHash: mark.hash, status, body, createdAt: at };
}
