// Proves the payment callback contract over HTTP on the embedded default and on MariaDB + Redis: only
// a genuine, fresh signature over the exact bytes is accepted (else 401 and nothing changes), each
// payment id applies once however often and in whatever order callbacks come, a wrong amount or a
// failed payment changes nothing, and a payment after expiry or cancel becomes refund_required
// without taking stock again — all against a real node on a real port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { startEngine, type Client, type TestEngine, engineBackends } from '../support/engine.ts';

const backends = engineBackends('e2e_payments');

async function order(c: Client, user: string, skuId: string, date: string, qty = 1): Promise<{ orderId: string; amountCents: number }> {
  const a = await c.buyer(user, 'POST', '/v1/orders', { skuId, date, qty });
  expect(a.status).toBe(201);
  return a.body;
}

describe.each(backends)('payment callbacks on %s', (_name, backend) => {
  let e: TestEngine;
  const clock = new ManualClock(Date.now());
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_RESERVATION_TTL_MS: '60000' }, clock);
    await e.client.sku('pay-sku', '2026-12-05', 100, { delivery: 'manual', priceCents: 2500 });
  });
  afterAll(async () => e?.stop());

  it('refuses bad, stale, future, missing and tampered signatures with 401 and changes nothing', async () => {
    const c = e.client;
    const o = await order(c, 'sig-user', 'pay-sku', '2026-12-05');
    const body = { orderId: o.orderId, paymentId: 'pay-sig', amountCents: o.amountCents, status: 'succeeded' as const };
    const now_s = Math.floor(clock.now() / 1000);
    const refused = await Promise.all([
      c.pay(body, { secret: 'not-the-payment-secret' }),
      c.pay(body, { t_s: now_s - 301 }),
      c.pay(body, { t_s: now_s + 301 }),
      c.pay(body, { signature: null }),
      c.pay(body, { signature: 'garbage' }),
      c.pay(body, { tamper: (raw) => raw.replace(`"amountCents":${o.amountCents}`, '"amountCents":1') }),
      c.pay(body, { tamper: (raw) => raw + ' ' }),
      c.pay(body, { tamper: () => 'not json at all' }),
    ]);
    for (const a of refused) {
      expect(a.status).toBe(401);
      expect(a.body.error).toBe('unauthorized');
    }
    const after = await c.buyer('sig-user', 'GET', `/v1/orders/${o.orderId}`);
    expect(after.body.status).toBe('reserved');
    // Inside the tolerance on either side is fine.
    const ok = await c.pay({ ...body, paymentId: 'pay-sig-ok' }, { t_s: now_s - 299 });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ orderId: o.orderId, status: 'paid' });
  });

  it('applies a payment once: 50 identical callbacks in parallel, then shuffled duplicates, all answer paid', async () => {
    const c = e.client;
    const o = await order(c, 'storm-user', 'pay-sku', '2026-12-05');
    const soldBefore = (await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body.sold;
    const body = { orderId: o.orderId, paymentId: 'pay-storm', amountCents: o.amountCents, status: 'succeeded' as const };
    const storm = await Promise.all(Array.from({ length: 50 }, () => c.pay(body)));
    for (const a of storm) expect(a.status === 200 ? a.body : a).toEqual({ orderId: o.orderId, status: 'paid' });
    const dupes = [body, { ...body, status: 'failed' as const }, body, { ...body, amountCents: 1 }, body];
    for (const b of dupes.sort(() => Math.random() - 0.5)) expect((await c.pay(b)).body.status).toBe('paid');
    const stock = await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05');
    expect(stock.body.sold).toBe(soldBefore + 1);
    const ops = await c.admin('GET', `/ops/orders/${o.orderId}`);
    expect(ops.status).toBe(200);
    expect(ops.body.history.filter((h: { status: string }) => h.status === 'paid')).toHaveLength(1);
  });

  it('a wrong amount and a failed payment change nothing; the right one then pays', async () => {
    const c = e.client;
    const o = await order(c, 'amount-user', 'pay-sku', '2026-12-05', 2);
    expect(o.amountCents).toBe(5000);
    const soldBefore = (await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body.sold;
    const wrong = await c.pay({ orderId: o.orderId, paymentId: 'pay-wrong', amountCents: 4999, status: 'succeeded' });
    expect(wrong.body).toEqual({ orderId: o.orderId, status: 'reserved' });
    const failed = await c.pay({ orderId: o.orderId, paymentId: 'pay-failed', amountCents: 5000, status: 'failed' });
    expect(failed.body).toEqual({ orderId: o.orderId, status: 'reserved' });
    expect((await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body.sold).toBe(soldBefore);
    // The wrong-amount payment id stays spent even with the right amount later.
    expect((await c.pay({ orderId: o.orderId, paymentId: 'pay-wrong', amountCents: 5000, status: 'succeeded' })).body.status).toBe('reserved');
    expect((await c.pay({ orderId: o.orderId, paymentId: 'pay-right', amountCents: 5000, status: 'succeeded' })).body.status).toBe('paid');
    expect((await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body.sold).toBe(soldBefore + 2);
    // A paid order can no longer be cancelled.
    expect((await c.buyer('amount-user', 'POST', `/v1/orders/${o.orderId}/cancel`)).status).toBe(409);
  });

  it('a payment after cancel or expiry is refund_required and takes no stock', async () => {
    const c = e.client;
    const cancelled = await order(c, 'late-user', 'pay-sku', '2026-12-05');
    expect((await c.buyer('late-user', 'POST', `/v1/orders/${cancelled.orderId}/cancel`)).body.status).toBe('cancelled');
    const before = (await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body;
    const late = await c.pay({ orderId: cancelled.orderId, paymentId: 'pay-late-1', amountCents: cancelled.amountCents, status: 'succeeded' });
    expect(late.body).toEqual({ orderId: cancelled.orderId, status: 'refund_required' });
    expect((await c.buyer('late-user', 'GET', `/v1/orders/${cancelled.orderId}`)).body.status).toBe('refund_required');
    // Cancelling again: it is no longer cancelled (a refund is owed), so 409.
    expect((await c.buyer('late-user', 'POST', `/v1/orders/${cancelled.orderId}/cancel`)).status).toBe(409);

    const expiring = await order(c, 'late-user', 'pay-sku', '2026-12-05');
    clock.advance(61_000);
    // The inventory actor's expiry timer runs on the injected clock; wait until it released the stock.
    const until = Date.now() + 10_000;
    while ((await c.buyer('late-user', 'GET', `/v1/orders/${expiring.orderId}`)).body.status !== 'expired' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const paidLate = await c.pay({ orderId: expiring.orderId, paymentId: 'pay-late-2', amountCents: expiring.amountCents, status: 'succeeded' }, { t_s: Math.floor(clock.now() / 1000) });
    expect(paidLate.body).toEqual({ orderId: expiring.orderId, status: 'refund_required' });
    const afterAll_ = (await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body;
    expect(afterAll_.sold).toBe(before.sold);
    expect(afterAll_.reserved).toBe(before.reserved);

    // At its expiry, whether or not the expiry pass (at most a second apart) got to it first, a
    // payment finds the order expired (refund_required, no stock taken) and a cancel finds it expired (409).
    const toPay = await order(c, 'late-user', 'pay-sku', '2026-12-05');
    const toCancel = await order(c, 'late-user', 'pay-sku', '2026-12-05');
    clock.advance(60_000);
    const [paidAtExpiry, cancelAtExpiry] = await Promise.all([
      c.pay({ orderId: toPay.orderId, paymentId: 'pay-late-3', amountCents: toPay.amountCents, status: 'succeeded' }, { t_s: Math.floor(clock.now() / 1000) }),
      c.buyer('late-user', 'POST', `/v1/orders/${toCancel.orderId}/cancel`),
    ]);
    expect(paidAtExpiry.body).toEqual({ orderId: toPay.orderId, status: 'refund_required' });
    expect(cancelAtExpiry.status).toBe(409);
    expect(cancelAtExpiry.body.error).toBe('invalid_state');
    expect((await c.buyer('late-user', 'GET', `/v1/orders/${toCancel.orderId}`)).body.status).toBe('expired');
    const atExpiry = (await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body;
    expect({ sold: atExpiry.sold, reserved: atExpiry.reserved }).toEqual({ sold: before.sold, reserved: before.reserved });
  });

  it('answers 404 for an unknown order and 400 for a malformed callback, both correctly signed', async () => {
    const c = e.client;
    const unknown = await c.pay({ orderId: '01JD0000000000000000000000-zz', paymentId: 'p', amountCents: 1, status: 'succeeded' });
    expect(unknown.status).toBe(404);
    const bad = await c.pay({ orderId: 'x', paymentId: 'p', amountCents: -1, status: 'succeeded' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_request');
  });
});

// A reservation shorter than an order actor's idle time (10 s): the actor that answered a callback is
// still in memory, holding `reserved`, when its SKU/date expires the order.
describe.each(engineBackends('e2e_payments_stale'))('payment callbacks after an expiry the order actor did not see, on %s', (_name, backend) => {
  let e: TestEngine;
  const clock = new ManualClock(Date.now());
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_RESERVATION_TTL_MS: '5000' }, clock);
    await e.client.sku('pay-sku', '2026-12-05', 100, { delivery: 'manual', priceCents: 2500 });
  });
  afterAll(async () => e?.stop());

  it('answers a failed or wrong-amount callback with the expired status when the order actor last saw the order reserved', async () => {
    const c = e.client;
    const o = await order(c, 'stale-user', 'pay-sku', '2026-12-05');
    // A failed callback first: the order's actor is now in memory, holding `reserved`.
    expect((await c.pay({ orderId: o.orderId, paymentId: 'pay-stale-0', amountCents: o.amountCents, status: 'failed' })).body).toEqual({ orderId: o.orderId, status: 'reserved' });
    const reservedBefore = (await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body.reserved;
    clock.advance(6_000);
    // Its SKU/date expires it (without telling the order's actor): wait on the inventory, not on a
    // GET of the order (a read looks the order up again and would hide the stale view).
    const until = Date.now() + 10_000;
    while ((await c.admin('GET', '/ops/inventory/pay-sku/2026-12-05')).body.reserved >= reservedBefore && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const t_s = Math.floor(clock.now() / 1000);
    const failed = await c.pay({ orderId: o.orderId, paymentId: 'pay-stale-1', amountCents: o.amountCents, status: 'failed' }, { t_s });
    expect(failed.body).toEqual({ orderId: o.orderId, status: 'expired' });
    const wrong = await c.pay({ orderId: o.orderId, paymentId: 'pay-stale-2', amountCents: o.amountCents + 1, status: 'succeeded' }, { t_s });
    expect(wrong.body).toEqual({ orderId: o.orderId, status: 'expired' });
    // Its history: reserved, then expired, never reserved again after it.
    const history = (await c.admin('GET', `/ops/orders/${o.orderId}`)).body.history as { status: string }[];
    const statuses = history.map((h) => h.status);
    expect(statuses.slice(statuses.indexOf('expired'))).not.toContain('reserved');
    expect((await c.buyer('stale-user', 'GET', `/v1/orders/${o.orderId}`)).body.status).toBe('expired');
  });
});
