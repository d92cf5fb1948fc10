// The journal form of inventory events: positional arrays instead of keyed objects. A flash sale
// writes one event per reservation, so the bytes per event are what the database spends its time
// on; this form is about half the size of the keyed JSON. Decoding is the exact inverse (tested).

import type { InventoryEvent } from '../engine/index.ts';

export type EncodedEvent = (string | number)[];

export function encodeEvent(e: InventoryEvent): EncodedEvent {
  switch (e.type) {
    case 'reserved':
      return e.idempotency
        ? [e.limited ? 'R' : 'r', e.orderId, e.userId, e.qty, e.amountCents, e.createdAt, e.expiresAt - e.createdAt, e.idempotency.key, e.idempotency.hash]
        : [e.limited ? 'R' : 'r', e.orderId, e.userId, e.qty, e.amountCents, e.createdAt, e.expiresAt - e.createdAt];
    case 'released':
      return ['x', e.orderId, e.userId, e.qty, e.reason === 'cancelled' ? 'c' : 'e', e.at, e.amountCents, e.createdAt, e.expiresAt - e.createdAt];
    case 'sold':
      return ['s', e.orderId, e.userId, e.qty, e.at, e.paymentId, e.amountCents, e.createdAt, e.expiresAt - e.createdAt];
    case 'total_set':
      return ['t', e.total, e.at];
    case 'keys_counted':
      return ['k', e.keysTotal, e.total, e.at];
    case 'refused':
      return ['f', e.userId, e.qty, e.at, e.idempotency.key, e.idempotency.hash];
    case 'limited':
      return ['L', e.from_ms, e.at];
    case 'fenced':
      return ['F', e.at];
  }
}

export class EventDecodeError extends Error {
  override name = 'EventDecodeError';
}

export function decodeEvent(raw: unknown): InventoryEvent {
  if (!Array.isArray(raw)) throw new EventDecodeError('journal event is not an array');
  const a = raw as EncodedEvent;
  const s = (i: number) => {
    const v = a[i];
    if (typeof v !== 'string') throw new EventDecodeError(`journal event field ${i} is not a string`);
    return v;
  };
  const n = (i: number) => {
    const v = a[i];
    if (typeof v !== 'number') throw new EventDecodeError(`journal event field ${i} is not a number`);
    return v;
  };
  switch (a[0]) {
    case 'r':
    case 'R': {
      const event: Extract<InventoryEvent, { type: 'reserved' }> = {
        type: 'reserved',
        orderId: s(1),
        userId: s(2),
        qty: n(3),
        amountCents: n(4),
        createdAt: n(5),
        expiresAt: n(5) + n(6),
      };
      if (a.length > 7) event.idempotency = { key: s(7), hash: s(8) };
      // 'R': a reservation whose usage the buyer's limit actor holds.
      if (a[0] === 'R') event.limited = true;
      return event;
    }
    case 'x':
      return { type: 'released', orderId: s(1), userId: s(2), qty: n(3), reason: s(4) === 'c' ? 'cancelled' : 'expired', at: n(5), amountCents: n(6), createdAt: n(7), expiresAt: n(7) + n(8) };
    case 's':
      return { type: 'sold', orderId: s(1), userId: s(2), qty: n(3), at: n(4), paymentId: s(5), amountCents: n(6), createdAt: n(7), expiresAt: n(7) + n(8) };
    case 't':
      return { type: 'total_set', total: n(1), at: n(2) };
    case 'k':
      return { type: 'keys_counted', keysTotal: n(1), total: n(2), at: n(3) };
    case 'f':
      return { type: 'refused', userId: s(1), error: 'sold_out', qty: n(2), at: n(3), idempotency: { key: s(4), hash: s(5) } };
    case 'L':
      return { type: 'limited', from_ms: n(1), at: n(2) };
    case 'F':
      return { type: 'fenced', at: n(1) };
    default:
      throw new EventDecodeError(`unknown journal event tag ${String(a[0])}`);
  }
}
