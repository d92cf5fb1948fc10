// Proves the start's re-drive of paid orders stops after 48 deliveries fail in a row (a dependency
// down: every order would wait its ask's deadline in turn, hours for a big backlog) and leaves them to
// reconciliation, while a re-drive that works delivers every paid order — a real node on the embedded
// default whose in-process delivery after a payment is switched off (as if it had crashed right after).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, switchOffDelivery, type TestEngine } from '../support/engine.ts';
import { until } from '../support/poll.ts';

describe('the re-drive of paid orders after a start', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RECONCILE_INTERVAL_MS: '0' });
    await switchOffDelivery(e);
  });
  afterAll(async () => e?.stop());

  it('stops after 48 failures in a row, and delivers every paid order when deliveries work', async () => {
    const c = e.client;
    await c.sku('rd', '2027-04-01', 100, { delivery: 'ticket', priceCents: 100 });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const o = await c.buyer(`rd-${i}`, 'POST', '/v1/orders', { skuId: 'rd', date: '2027-04-01', qty: 1 });
      expect((await c.pay({ orderId: o.body.orderId, paymentId: `rd-pay-${i}`, amountCents: 100, status: 'succeeded' })).body.status).toBe('paid');
      ids.push(o.body.orderId);
    }
    await until('all paid in the read model', () => e.node.stores.projection.ordersByStatus('paid', 1_000), (rows) => ids.every((id) => rows.some((r) => r.orderId === id)));

    const orders = e.node.orders;
    const deliverPaid = orders.deliverPaid.bind(orders);
    let asked = 0;
    orders.deliverPaid = () => {
      asked++;
      return Promise.reject(new Error('injected: the database does not answer'));
    };
    try {
      await e.node.redrivePaidOrders();
    } finally {
      orders.deliverPaid = deliverPaid;
    }
    expect(asked).toBe(48);

    await e.node.redrivePaidOrders();
    const rows = await Promise.all(ids.map((id) => c.buyer(`rd-${ids.indexOf(id)}`, 'GET', `/v1/orders/${id}`)));
    expect(rows.map((r) => r.body.status)).toEqual(Array(60).fill('delivered'));
  });
});
