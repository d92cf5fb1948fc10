// Proves the start's re-drive of paid orders stops after 48 deliveries fail in a row (a dependency
// down: every order would wait its ask's deadline in turn, hours for a big backlog) and leaves them to
// reconciliation, while a re-drive that works delivers every paid order, card-key orders in the order
// they were paid (so orders waiting for keys park again in their FIFO order) — a real node on the embedded
// default whose in-process delivery after a payment is switched off (as if it had crashed right after).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, switchOffDelivery, type TestEngine } from '../support/engine.ts';
import { until } from '../support/poll.ts';
import { OverloadedError } from '../../actors/runtime/index.ts';

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

  it('skips a SKU whose delivery answers busy (overloaded) and goes on with the others, not counting it as failures', async () => {
    const c = e.client;
    await c.sku('rd-busy', '2027-04-02', 100, { delivery: 'ticket', priceCents: 100 });
    await c.sku('rd-fine', '2027-04-02', 100, { delivery: 'ticket', priceCents: 100 });
    const ids: { id: string; user: string; sku: string }[] = [];
    // The busy SKU's 60 paid orders come first in id order, the other SKU's 5 after them.
    for (const [sku, n] of [['rd-busy', 60], ['rd-fine', 5]] as const) {
      for (let i = 0; i < n; i++) {
        const user = `${sku}-${i}`;
        const o = await c.buyer(user, 'POST', '/v1/orders', { skuId: sku, date: '2027-04-02', qty: 1 });
        expect((await c.pay({ orderId: o.body.orderId, paymentId: `${user}-pay`, amountCents: 100, status: 'succeeded' })).body.status).toBe('paid');
        ids.push({ id: o.body.orderId, user, sku });
      }
    }
    await until('all paid in the read model', () => e.node.stores.projection.ordersByStatus('paid', 1_000), (rows) => ids.every(({ id }) => rows.some((r) => r.orderId === id)));
    const orders = e.node.orders;
    const deliverPaid = orders.deliverPaid.bind(orders);
    let busyAsked = 0;
    orders.deliverPaid = (orderId: string) => {
      if (ids.find((o) => o.id === orderId)?.sku === 'rd-busy') {
        busyAsked++;
        return Promise.reject(new OverloadedError('card-key delivery of rd-busy is overloaded'));
      }
      return deliverPaid(orderId);
    };
    try {
      await e.node.redrivePaidOrders();
    } finally {
      orders.deliverPaid = deliverPaid;
    }
    // The busy SKU was asked once per group it met, not 48 times; the other SKU's orders were delivered.
    expect(busyAsked).toBeLessThanOrEqual(16);
    const fine = await Promise.all(ids.filter((o) => o.sku === 'rd-fine').map((o) => c.buyer(o.user, 'GET', `/v1/orders/${o.id}`)));
    expect(fine.map((r) => r.body.status)).toEqual(Array(5).fill('delivered'));
  });

  it('asks card-key orders to deliver in the order they were paid, not the order they were created', async () => {
    const c = e.client;
    await c.sku('rd-keys', 'open', 0, { delivery: 'card_key', priceCents: 100 });
    expect((await c.admin('POST', '/v1/skus/rd-keys/card-keys', { keys: ['K-1', 'K-2', 'K-3'] })).status).toBe(200);
    const created: string[] = [];
    for (const user of ['rk-a', 'rk-b', 'rk-c']) {
      const o = await c.buyer(user, 'POST', '/v1/orders', { skuId: 'rd-keys', date: 'open', qty: 1 });
      expect(o.status).toBe(201);
      created.push(o.body.orderId);
    }
    const [a, b, cc] = created as [string, string, string];
    // Paid c, a, b, each at a later millisecond than the one before.
    for (const id of [cc, a, b]) {
      expect((await c.pay({ orderId: id, paymentId: `${id}-pay`, amountCents: 100, status: 'succeeded' })).body.status).toBe('paid');
      const paidAt = Date.now();
      await until('the next millisecond', async () => Date.now(), (t) => t > paidAt + 1);
    }
    await until('all paid in the read model', () => e.node.stores.projection.ordersByStatus('paid', 1_000), (rows) => created.every((id) => rows.some((r) => r.orderId === id)));
    const orders = e.node.orders;
    const deliverPaid = orders.deliverPaid.bind(orders);
    const asked: string[] = [];
    orders.deliverPaid = (orderId: string) => {
      if (created.includes(orderId)) asked.push(orderId);
      return deliverPaid(orderId);
    };
    try {
      await e.node.redrivePaidOrders();
    } finally {
      orders.deliverPaid = deliverPaid;
    }
    expect(asked).toEqual([cc, a, b]);
    const delivered = await Promise.all(['rk-a', 'rk-b', 'rk-c'].map((user, i) => c.buyer(user, 'GET', `/v1/orders/${created[i]}`)));
    expect(delivered.map((r) => r.body.status)).toEqual(['delivered', 'delivered', 'delivered']);
  });
});
