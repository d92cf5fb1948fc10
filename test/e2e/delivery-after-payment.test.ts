// Proves a paid order is delivered by the order actor that answered its payment, and that a delivery
// failing there is left to the bus: the callback is answered `paid` while the delivery's write is still
// held, that write then fails (counted `failed`, the order still paid, nothing of the delivery durable),
// and the bus's consumer of `order.paid` delivers the order, once; and the delivery waits for the rest
// of the payment's batch (a get asked with the payment is answered while the delivery's write is held)
// — against a real node on the embedded default and on MariaDB + Redis (the in-process outbox bus).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderStream, type OrderActorReply } from '../../actors/order-actor.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { injectJournalFaults, waitFor } from '../support/journal-faults.ts';
import { until } from '../support/poll.ts';

const backends = engineBackends('e2e_delivery_after_payment');

describe.each(backends)('delivery right after a payment on %s', (_name, backend) => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_RECONCILE_INTERVAL_MS: '0', STAMPEDE_RESERVATION_TTL_MS: '600000' });
  });
  afterAll(async () => e?.stop());

  it('a delivery that fails right after the payment leaves the order paid and counted failed; the bus delivers it once', async () => {
    const c = e.client;
    await c.sku('fail-tix', '2026-12-24', 5, { delivery: 'ticket', priceCents: 700 });
    const o = await c.buyer('fail-user', 'POST', '/v1/orders', { skuId: 'fail-tix', date: '2026-12-24', qty: 1 });
    expect(o.status).toBe(201);
    const own = orderStream(o.body.orderId);
    const kinds = async () => (await e.node.stores.journal.readAfter(own, 0)).flatMap((r) => r.events.map((ev) => (ev as { type: string }).type));
    const [failedBefore, deliveredBefore] = [await deliveries(e, 'failed'), await deliveries(e, 'delivered')];
    // What the order actor told of its own delivery after the payment (and nothing else tells it).
    const told: unknown[] = [];
    const orders = e.node.orders;
    const tell = orders.deliveredAfterPayment;
    orders.deliveredAfterPayment = (orderId, result) => {
      if (orderId === o.body.orderId) told.push(result);
      tell.call(orders, orderId, result);
    };
    // The order's `delivered` record (written on its own: a ticket's codes need no keys) is held, then fails.
    const f = injectJournalFaults(e.node.stores.journal);
    f.only = (stream) => stream === own;
    f.hold = true;
    try {
      const callback = { orderId: o.body.orderId, paymentId: 'pay-fail', amountCents: 700, status: 'succeeded' as const };
      // Answered paid while the delivery's write is still held: the answer does not wait for delivery.
      expect((await c.pay(callback)).body).toEqual({ orderId: o.body.orderId, status: 'paid' });
      await waitFor(() => f.held.length === 1, 5_000, 'the delivered record held');
      expect(f.held[0]!.records.map((r) => r.events.map((ev) => (ev as { type: string }).type))).toEqual([['order.delivered']]);
      f.hold = false;
      await f.held[0]!.fail(new StoreUnavailableError('injected: the delivered write failed'));
      await until('the failed delivery counted', () => deliveries(e, 'failed'), (n) => n >= failedBefore + 1, 5_000);
      // It was the order actor's own, right after the payment: it told of the write's failure.
      expect(told).toHaveLength(1);
      expect((told[0] as { thrown?: unknown }).thrown).toBeInstanceOf(Error);
      // The bus's consumer of `order.paid` (the safety net) delivers it: no callback is repeated.
      const view = await until('delivered', () => c.buyer('fail-user', 'GET', `/v1/orders/${o.body.orderId}`), (v) => v.body.status === 'delivered', 10_000);
      expect(view.body.delivery.payload.tickets).toHaveLength(1);
      expect(await kinds()).toEqual(['order.reserved', 'order.paid', 'order.delivered']);
      expect(await deliveries(e, 'delivered')).toBe(deliveredBefore + 1);
    } finally {
      for (const h of f.held) void h.release();
      f.restore();
      orders.deliveredAfterPayment = tell;
    }
  });

  it('answers the rest of the payment\'s batch before delivering: a get asked with the payment is not held by the delivery', async () => {
    const c = e.client;
    await c.sku('batch-tix', '2026-12-24', 5, { delivery: 'ticket', priceCents: 700 });
    const o = await c.buyer('batch-user', 'POST', '/v1/orders', { skuId: 'batch-tix', date: '2026-12-24', qty: 1 });
    expect(o.status).toBe(201);
    const orderId = o.body.orderId as string;
    const f = injectJournalFaults(e.node.stores.journal);
    f.only = (stream) => stream === orderStream(orderId);
    f.hold = true;
    try {
      // Asked in one turn: one batch of the order actor, the payment first.
      const kind = e.node.orders['orderActors'];
      const paying = kind.ask<OrderActorReply>(orderId, { type: 'pay', payment: { paymentId: 'pay-batch', amountCents: 700, status: 'succeeded' } });
      const getting = kind.ask<OrderActorReply>(orderId, { type: 'get' });
      // Answered while the delivery's write is still held (it would wait for it, behind the delivery).
      expect(await getting).toMatchObject({ outcome: 'ok', order: { status: 'paid' } });
      expect(await paying).toMatchObject({ outcome: 'ok', order: { status: 'paid' } });
      await waitFor(() => f.held.length === 1, 5_000, 'the delivered record held');
      f.hold = false;
      await f.held[0]!.release();
      await until('delivered', () => c.buyer('batch-user', 'GET', `/v1/orders/${orderId}`), (v) => v.body.status === 'delivered', 10_000);
    } finally {
      for (const h of f.held) void h.release();
      f.restore();
    }
  });
});

/** The node's count of delivery attempts with this outcome. */
async function deliveries(e: TestEngine, outcome: string): Promise<number> {
  const m = await e.node.metrics.deliveries.get();
  return m.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}
