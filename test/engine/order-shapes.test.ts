// Proves that order states share one hidden class however many orders there are, through every
// transition (reserved, paid, delivered, redeemed, a payment mismatch): built from object spreads
// they took a V8 map and descriptor array of their own per order (2,998 of 3,000 live order actors in
// a heap snapshot, ~260 bytes each, every read of a state megamorphic). Checked with %HaveSameMap.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { evolveOrder, type OrderEvent, type OrderState } from '../../engine/index.ts';

setFlagsFromString('--allow-natives-syntax');
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

const T0 = Date.parse('2026-12-01T00:00:00Z');

function lifecycle(i: number): OrderState[] {
  const events: OrderEvent[] = [
    {
      type: 'order.reserved',
      order: { orderId: `order-${i}`, userId: `buyer-${i}`, skuId: `sku-${i % 7}`, date: '2027-06-01', qty: 1 + (i % 3), amountCents: 1999 * (1 + (i % 3)), createdAt: T0 + i, expiresAt: T0 + i + 900_000 },
      at: T0 + i,
    },
    { type: 'order.paid', paymentId: `pay-${i}`, at: T0 + i + 10 },
    { type: 'order.payment_mismatch', paymentId: `pay-wrong-${i}`, amountCents: 1, at: T0 + i + 15 },
    { type: 'order.delivered', delivery: { kind: 'ticket', codes: [`code-${i}`] }, at: T0 + i + 20 },
    { type: 'order.redeemed', at: T0 + i + 30 },
  ];
  const states: OrderState[] = [];
  let s: OrderState | undefined;
  for (const e of events) states.push((s = evolveOrder(s, e)));
  return states;
}

describe('order states', () => {
  it('share one hidden class across 2,000 orders and all their transitions', () => {
    const all = Array.from({ length: 2_000 }, (_, i) => lifecycle(i));
    expect(all[7]!.map((s) => s.status)).toEqual(['reserved', 'paid', 'paid', 'delivered', 'delivered']);
    expect(all[7]![4]).toMatchObject({ paymentIds: ['pay-7', 'pay-wrong-7'], visit: { kind: 'redeemed', at: T0 + 37 }, delivery: { kind: 'ticket' } });
    const first = all[0]![0]!;
    const distinct = all.flat().filter((s) => !haveSameMap(s, first)).length;
    expect(distinct).toBe(0);
  });
});
