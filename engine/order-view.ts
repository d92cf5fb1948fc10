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

// In a flash sale thousands of orders a second share their expiry millisecond: formatting a date
// is the costliest step of a 201's body, so the last one is remembered.
let lastIso_ms = NaN;
let lastIso = '';

/** ISO-8601 UTC of a time in ms (memoised for the last value; pure). */
export function isoTime(t_ms: number): string {
  if (t_ms !== lastIso_ms) {
    lastIso = new Date(t_ms).toISOString();
    lastIso_ms = t_ms;
  }
  return lastIso;
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
