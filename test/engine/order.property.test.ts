// Proves the order lifecycle only makes the allowed transitions, applies each payment once, and that
// replaying its events rebuilds the same order: fast-check drives random command sequences.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideOrder, evolveOrder, type OrderCommand, type OrderEvent, type OrderState, type OrderStatus } from '../../engine/index.ts';

const ALLOWED: Record<OrderStatus, OrderStatus[]> = {
  reserved: ['paid', 'cancelled', 'expired'],
  paid: ['delivered'],
  delivered: [],
  cancelled: ['refund_required'],
  expired: ['refund_required'],
  refund_required: [],
};

const created: OrderEvent = {
  type: 'order.reserved',
  at: 0,
  order: { orderId: 'o1', userId: 'u1', skuId: 's', date: 'open', qty: 2, amountCents: 500, createdAt: 0, expiresAt: 100 },
};

const cmd: fc.Arbitrary<OrderCommand> = fc.oneof(
  fc.record({
    type: fc.constant('pay' as const),
    payment: fc.record({
      paymentId: fc.constantFrom('p1', 'p2', 'p3'),
      amountCents: fc.constantFrom(500, 499),
      status: fc.constantFrom('succeeded' as const, 'failed' as const),
    }),
  }),
  fc.constant({ type: 'cancel' as const }),
  fc.constant({ type: 'expire' as const }),
  fc.constant<OrderCommand>({ type: 'deliver', delivery: { kind: 'ticket', codes: ['T1'] } }),
  fc.record({
    type: fc.constant('adopt' as const),
    settlement: fc.oneof(
      fc.record({ status: fc.constant('paid' as const), paymentId: fc.constantFrom('p1', 'p2') }),
      fc.record({ status: fc.constantFrom('cancelled' as const, 'expired' as const) }),
    ),
  }),
);

describe('order lifecycle', () => {
  it('makes only allowed transitions, never applies a payment twice, and replays to the same state', () => {
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 40 }), (cmds) => {
        let s: OrderState = evolveOrder(undefined, created);
        const events: OrderEvent[] = [created];
        let paidCount = 0;
        cmds.forEach((c, i) => {
          const d = decideOrder(s, c, i + 1);
          for (const e of d.events) {
            const next = evolveOrder(s, e);
            if (next.status !== s.status) expect(ALLOWED[s.status]).toContain(next.status);
            if (e.type === 'order.paid') paidCount++;
            s = next;
          }
          events.push(...d.events);
        });
        expect(paidCount).toBeLessThanOrEqual(1);
        // Delivered means paid first, and carries what was delivered.
        if (s.status === 'delivered') expect(s.delivery).toBeDefined();
        expect(new Set(s.paymentIds).size).toBe(s.paymentIds.length);
        const replayed = events.reduce<OrderState | undefined>((acc, e) => evolveOrder(acc, e), undefined);
        expect(replayed).toEqual(s);
      }),
      { numRuns: 500 },
    );
  });

  it('turns a payment after expiry into refund_required and keeps a wrong amount from paying', () => {
    let s = evolveOrder(undefined, created);
    const wrong = decideOrder(s, { type: 'pay', payment: { paymentId: 'p', amountCents: 1, status: 'succeeded' } }, 1);
    expect(wrong.events.map((e) => e.type)).toEqual(['order.payment_mismatch']);
    s = evolveOrder(s, decideOrder(s, { type: 'expire' }, 2).events[0]!);
    const late = decideOrder(s, { type: 'pay', payment: { paymentId: 'q', amountCents: 500, status: 'succeeded' } }, 3);
    expect(late.reply).toEqual({ outcome: 'ok', status: 'refund_required' });
    expect(decideOrder(s, { type: 'cancel' }, 4).reply.outcome).toBe('invalid_state');
  });

  it('adopts the inventory settlement of a reserved order, and flags one that contradicts it', () => {
    const s = evolveOrder(undefined, created);
    const paid = decideOrder(s, { type: 'adopt', settlement: { status: 'paid', paymentId: 'p9' } }, 1);
    expect(paid.events).toEqual([{ type: 'order.paid', paymentId: 'p9', at: 1 }]);
    const p = evolveOrder(s, paid.events[0]!);
    // The same settlement again changes nothing; another one is a conflict, never a silent change.
    expect(decideOrder(p, { type: 'adopt', settlement: { status: 'paid', paymentId: 'p9' } }, 2)).toEqual({ events: [], reply: { outcome: 'ok', status: 'paid' } });
    expect(decideOrder(p, { type: 'adopt', settlement: { status: 'expired' } }, 2).reply.outcome).toBe('conflict');
    // A second payment of a paid order is a refund, and the same payment again is nothing.
    expect(decideOrder(p, { type: 'pay', payment: { paymentId: 'p9', amountCents: 500, status: 'succeeded' } }, 3).events).toEqual([]);
    expect(decideOrder(p, { type: 'pay', payment: { paymentId: 'p10', amountCents: 500, status: 'succeeded' } }, 3).events.map((e) => e.type)).toEqual([
      'order.refund_required',
    ]);
    const expired = evolveOrder(s, decideOrder(s, { type: 'adopt', settlement: { status: 'expired' } }, 1).events[0]!);
    const refunded = evolveOrder(expired, decideOrder(expired, { type: 'pay', payment: { paymentId: 'q', amountCents: 500, status: 'succeeded' } }, 2).events[0]!);
    expect(refunded.status).toBe('refund_required');
    expect(decideOrder(refunded, { type: 'adopt', settlement: { status: 'expired' } }, 3).reply.outcome).toBe('ok');
    expect(decideOrder(refunded, { type: 'adopt', settlement: { status: 'cancelled' } }, 3).reply.outcome).toBe('conflict');
  });
});
