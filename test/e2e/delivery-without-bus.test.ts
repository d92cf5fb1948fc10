// Proves delivery starts in the process, not only from the bus: with the node's delivery consumer
// stopped (as while NATS is down) and reconciliation off, a free ticket order is delivered right
// after its reservation, and a paid order whose first callback never started its delivery (a lost
// answer, a crash right after the payment) is delivered when the provider repeats the callback —
// against a real node on the embedded default and on MariaDB + Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { until } from '../support/poll.ts';

const backends = engineBackends('e2e_delivery_without_bus');

describe.each(backends)('delivery without the bus on %s', (_name, backend) => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_RECONCILE_INTERVAL_MS: '0', STAMPEDE_RESERVATION_TTL_MS: '600000' });
    await e.node['deliveryConsumer']?.stop();
  });
  afterAll(async () => e?.stop());

  it('delivers a free ticket order as it is reserved', async () => {
    const c = e.client;
    await c.sku('free-tix', '2026-12-24', 5, { delivery: 'ticket', priceCents: 0 });
    const o = await c.buyer('free-user', 'POST', '/v1/orders', { skuId: 'free-tix', date: '2026-12-24', qty: 2 });
    expect([o.status, o.body.amountCents]).toEqual([201, 0]);
    const view = await until('delivered', () => c.buyer('free-user', 'GET', `/v1/orders/${o.body.orderId}`), (v) => v.body.status === 'delivered', 10_000);
    expect(view.body.delivery.payload.tickets).toHaveLength(2);
  });

  it('a repeated callback starts the delivery of an order its first callback paid without starting it', async () => {
    const c = e.client;
    await c.sku('paid-tix', '2026-12-24', 5, { delivery: 'ticket', priceCents: 700 });
    const o = await c.buyer('repeat-user', 'POST', '/v1/orders', { skuId: 'paid-tix', date: '2026-12-24', qty: 1 });
    expect(o.status).toBe(201);
    const callback = { orderId: o.body.orderId, paymentId: 'pay-repeat', amountCents: 700, status: 'succeeded' as const };
    // The first callback pays, and its delivery never starts (as if the process died right then).
    const options = e.node.orders['options'] as { deliveryAttempted?: unknown };
    const attempted = options.deliveryAttempted;
    options.deliveryAttempted = undefined;
    try {
      expect((await c.pay(callback)).body).toEqual({ orderId: o.body.orderId, status: 'paid' });
    } finally {
      options.deliveryAttempted = attempted;
    }
    await new Promise((r) => setTimeout(r, 200));
    expect((await c.buyer('repeat-user', 'GET', `/v1/orders/${o.body.orderId}`)).body.status).toBe('paid');
    // The provider repeats it: the same answer, and the delivery starts.
    expect((await c.pay(callback)).body).toEqual({ orderId: o.body.orderId, status: 'paid' });
    const view = await until('delivered', () => c.buyer('repeat-user', 'GET', `/v1/orders/${o.body.orderId}`), (v) => v.body.status === 'delivered', 10_000);
    expect(view.body.delivery.payload.tickets).toHaveLength(1);
    // Once delivered, another repeat changes nothing.
    expect((await c.pay(callback)).body).toEqual({ orderId: o.body.orderId, status: 'delivered' });
  });
});
