// Proves GET /ops/orders lists a passivated SKU/date's orders from the read model without waking it (no
// recovery, the actor stays out of memory), page by page, while a SKU/date discarded with a live
// reservation and not woken yet is still asked, so its reservation is listed — on the embedded
// default, a real node over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { waitFor } from '../support/journal-faults.ts';
import { sampleValue } from '../support/metrics.ts';

const DATE = '2027-03-01';

describe('listing the orders of a SKU/date not in memory', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_IDLE_MS: '200' });
  });
  afterAll(async () => e?.stop());

  const recoveries = async (): Promise<number> => sampleValue((await e.client.admin('GET', '/metrics')).body as string, 'stampede_recovery_ms_count');

  it('lists a passivated SKU/date from the read model, page by page, without waking it', async () => {
    const c = e.client;
    await c.sku('lp', DATE, 10);
    const placed = await Promise.all([1, 2, 3].map((i) => c.buyer(`lp-buyer-${i}`, 'POST', '/v1/orders', { skuId: 'lp', date: DATE, qty: 1 })));
    expect(placed.map((a) => a.status)).toEqual([201, 201, 201]);
    const [paidOrder, ...cancelledOrders] = placed.map((a) => a.body);
    expect((await c.pay({ orderId: paidOrder.orderId, paymentId: 'pi_lp', amountCents: paidOrder.amountCents, status: 'succeeded' })).status).toBe(200);
    for (const [i, o] of cancelledOrders.entries()) expect((await c.buyer(`lp-buyer-${i + 2}`, 'POST', `/v1/orders/${o.orderId}/cancel`)).status).toBe(200);
    // A ticket order is delivered once paid; then the SKU/date holds nothing and passivates.
    await waitFor(async () => (await c.buyer('lp-buyer-1', 'GET', `/v1/orders/${paidOrder.orderId}`)).body.status === 'delivered', 10_000, 'the paid order delivered');
    const stream = `lp/${DATE}`;
    await waitFor(() => !e.node.inventory.has(stream), 10_000, 'the SKU/date passivated');

    const recovered = await recoveries();
    const first = await c.admin('GET', `/ops/orders?skuId=lp&date=${DATE}&limit=2`);
    expect(first.status).toBe(200);
    const second = await c.admin('GET', `/ops/orders?skuId=lp&date=${DATE}&limit=2&after=${first.body.next}`);
    expect(second.status).toBe(200);
    expect(second.body.next).toBeNull();
    const listed = [...first.body.orders, ...second.body.orders] as { orderId: string; status: string }[];
    const expected = [
      [paidOrder.orderId, 'delivered'],
      ...cancelledOrders.map((o) => [o.orderId, 'cancelled']),
    ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
    expect(listed.map((o) => [o.orderId, o.status])).toEqual(expected);
    expect(first.body.next).toBe(listed[1]!.orderId);

    // Not woken: not in memory, no recovery counted.
    expect(e.node.inventory.has(stream)).toBe(false);
    expect(await recoveries()).toBe(recovered);
  });

  it('still asks a SKU/date discarded with a live reservation and not woken yet: its reservation is listed', async () => {
    const c = e.client;
    await c.sku('lp2', DATE, 10);
    const placed = await c.buyer('lp2-buyer', 'POST', '/v1/orders', { skuId: 'lp2', date: DATE, qty: 1 });
    expect(placed.status).toBe(201);
    const stream = `lp2/${DATE}`;
    // A bug crashes the SKU/date with a live reservation: discarded, to be woken by the engine shortly.
    e.node.inventory.tell(stream, { type: 'no-such-command' } as never);
    await waitFor(() => !e.node.inventory.has(stream), 2_000, 'the SKU/date discarded');
    expect(e.node.wakes.has(stream)).toBe(true);
    const listed = await c.admin('GET', `/ops/orders?skuId=lp2&date=${DATE}`);
    expect(listed.status).toBe(200);
    expect(listed.body.orders.map((o: { orderId: string; status: string }) => [o.orderId, o.status])).toEqual([[placed.body.orderId, 'reserved']]);
  });
});
