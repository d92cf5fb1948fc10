// The contract's JSON form of an order (API.md "Storefront"), made from whichever source knows the
// order: a live reservation, a projected row. One shape, used by the HTTP answers and the
// idempotency records that must replay them byte for byte.

export interface OrderFacts {
  orderId: string;
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  status: string;
  createdAt: number;
  expiresAt: number;
}

export interface OrderCreatedBody {
  orderId: string;
  status: 'reserved';
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  expiresAt: string;
}

/** The 201 body of a reservation `o` of SKU `skuId` on `date`. */
export function orderCreatedBody(o: Pick<OrderFacts, 'orderId' | 'qty' | 'amountCents' | 'expiresAt'>, skuId: string, date: string): OrderCreatedBody {
  return {
    orderId: o.orderId,
    status: 'reserved',
    skuId,
    date,
    qty: o.qty,
    amountCents: o.amountCents,
    expiresAt: isoTime(o.expiresAt),
  };
}

// In a flash sale thousands of orders a second share their creation and expiry millisecond:
// formatting a date is the costliest step of a 201's body and of an order event (which formats its
// time, creation and expiry: two or three distinct values per millisecond), so the last few are kept.
const ISO_SLOTS = 4;
const iso_ms: number[] = [NaN, NaN, NaN, NaN];
const iso: string[] = ['', '', '', ''];
let isoNext = 0;

/** ISO-8601 UTC of a time in ms (memoised for the last few values; pure). */
export function isoTime(t_ms: number): string {
  for (let i = 0; i < ISO_SLOTS; i++) if (iso_ms[i] === t_ms) return iso[i]!;
  const i = isoNext;
  isoNext = (isoNext + 1) % ISO_SLOTS;
  iso_ms[i] = t_ms;
  iso[i] = new Date(t_ms).toISOString();
  return iso[i]!;
}

export interface OrderBody {
  orderId: string;
  status: string;
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  createdAt: string;
  expiresAt: string;
}

export function orderBody(o: OrderFacts): OrderBody {
  return {
    orderId: o.orderId,
    status: o.status,
    skuId: o.skuId,
    date: o.date,
    qty: o.qty,
    amountCents: o.amountCents,
    createdAt: isoTime(o.createdAt),
    expiresAt: isoTime(o.expiresAt),
  };
}
