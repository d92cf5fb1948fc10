// Proves a buyer's limit actor hears of a sale from the SKU/date once the sale is durable, not from the
// payment that asked for it: a payment whose sale write outlived its ask (503) but committed, then
// retried (200 paid), leaves the buyer's ops view with the order counted, not held — on the embedded
// default and on MariaDB. The write is held open with an injected fault.
import { describe, expect, it } from 'vitest';
import { ORDER_STREAM_PREFIX } from '../../actors/order-actor.ts';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { engineUnderTest, injectJournalFaults, waitFor } from '../support/journal-faults.ts';

describe.each(engineBackends('e2e_limited_sale_in_doubt'))('a limited sale whose ask timed out on %s', (_name, backend) => {
  const t = engineUnderTest<TestEngine>();

  it('counts the order in its buyer\'s limit state once the sale commits, though its payment was answered 503', async () => {
    const e = (t.engine = await startEngine(await backend(), { STAMPEDE_ASK_TIMEOUT_MS: '400', STAMPEDE_RECONCILE_INTERVAL_MS: '0' }));
    const c = e.client;
    expect((await c.admin('PUT', '/v1/limit-rules/two-each', { groupBy: ['skuId'], max: { units: 2 } })).status).toBe(200);
    await c.sku('lsd', '2027-09-01', 10, { priceCents: 400 });
    const o = await c.buyer('lsd-u', 'POST', '/v1/orders', { skuId: 'lsd', date: '2027-09-01', qty: 1 });
    expect(o.status).toBe(201);
    const orderId = o.body.orderId as string;
    expect((await c.admin('GET', '/ops/buyers/lsd-u')).body.holds.map((h: { orderId: string }) => h.orderId)).toEqual([orderId]);

    // The sale's write (the SKU/date's `sold` with the order's `paid`) is held past the ask's deadline.
    const f = (t.faults = injectJournalFaults(e.node.stores.journal));
    f.only = (stream) => stream === 'lsd/2027-09-01' || stream.startsWith(ORDER_STREAM_PREFIX);
    f.hold = true;
    const payment = { orderId, paymentId: 'pay-lsd', amountCents: 400, status: 'succeeded' as const };
    expect((await c.pay(payment)).status).toBe(503);
    await waitFor(() => f.held.length === 1, 5_000, 'the sale\'s write');
    f.hold = false;
    await f.held[0]!.release();
    // The provider retries: the order is paid (or delivered already: once the sale committed, its
    // ticket's delivery can be done before the retry comes; the answer is the order's status).
    const retried = await c.pay(payment);
    expect(retried.status).toBe(200);
    expect(retried.body.orderId).toBe(orderId);
    expect(['paid', 'delivered']).toContain(retried.body.status);
    // Read at once (the buyer's actor is still the one that held it: it passivates only after 3 s,
    // and a reload would settle the hold by itself).
    const buyer = (await c.admin('GET', '/ops/buyers/lsd-u')).body;
    expect([buyer.holds, buyer.counted.map((h: { orderId: string }) => h.orderId)]).toEqual([[], [orderId]]);
  });
});
