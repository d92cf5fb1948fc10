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

export function orderCreatedBody(o: Omit<OrderFacts, 'status' | 'createdAt'>): OrderCreatedBody {
  return {
    orderId: o.orderId,
    status: 'reserved',
    skuId: o.skuId,
    date: o.date,
    qty: o.qty,
    amountCents: o.amountCents,
    expiresAt: new Date(o.expiresAt).toISOString(),
  };
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
    createdAt: new Date(o.createdAt).toISOString(),
    expiresAt: new Date(o.expiresAt).toISOString(),
  };
}
