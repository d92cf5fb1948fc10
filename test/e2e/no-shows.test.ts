// Proves no-shows on the embedded default and on MariaDB + Redis with an injected clock: a delivered
// ticket order redeemed (POST /v1/orders/{id}/redeem, admin) never becomes a no-show, one whose date
// passes unredeemed does (once, however often the sweep runs) and can no longer be redeemed from the
// end of its date on, swept or not, and the contract's no-show rule then
// refuses the buyer with 403 naming it; a redeem racing the sweep of its order waits for it and is
// refused, so the buyer's no-shows and the order's history agree — a real node over HTTP, time moved by the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { startEngine, type TestEngine, engineBackends } from '../support/engine.ts';
import { until } from '../support/poll.ts';

const backends = engineBackends('e2e_no_shows');

describe.each(backends)('no-shows on %s', (_name, backend) => {
  let e: TestEngine;
  const clock = new ManualClock(Date.parse('2026-12-01T09:00:00Z'));
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_RESERVATION_TTL_MS: '3600000', STAMPEDE_RECONCILE_INTERVAL_MS: '0' }, clock);
    const c = e.client;
    const rule = { id: 'no-show', window: { from: '2026-12-01T00:00:00Z', to: '2027-01-01T00:00:00Z' }, max: { noShows: 2 } };
    expect((await c.admin('PUT', '/v1/limit-rules/no-show', rule)).status).toBe(200);
    await c.sku('show', '2026-12-02', 100, { delivery: 'ticket', priceCents: 0 });
    await c.sku('show', '2026-12-03', 100, { delivery: 'ticket', priceCents: 0 });
    await c.sku('show', '2026-12-20', 100, { delivery: 'ticket', priceCents: 0 });
  });
  afterAll(async () => e?.stop());

  /** A free ticket (paid at once) ordered and delivered. */
  async function delivered(user: string, date: string): Promise<string> {
    const o = await e.client.buyer(user, 'POST', '/v1/orders', { skuId: 'show', date, qty: 1 });
    expect(o.status).toBe(201);
    await until('delivery', () => e.client.buyer(user, 'GET', `/v1/orders/${o.body.orderId}`), (a) => a.body.status === 'delivered', 10_000);
    return o.body.orderId;
  }

  /** A ticket of `date` delivered to `user`, then the clock moved to `after` (past that date). */
  async function deliveredThenPast(user: string, date: string, after: string): Promise<string> {
    await e.client.sku('show', date, 100, { delivery: 'ticket', priceCents: 0 });
    const order = await delivered(user, date);
    clock.set(Date.parse(after));
    e.client.forgetTokens();
    return order;
  }

  it('counts an unredeemed past date as a no-show, never a redeemed one, once however often it sweeps, and the rule then refuses', async () => {
    const c = e.client;
    const visited = await delivered('visitor', '2026-12-02');
    const skipped1 = await delivered('visitor', '2026-12-02');
    const skipped2 = await delivered('visitor', '2026-12-03');
    // Redeeming: admin only; a non-ticket or undelivered order cannot be.
    expect((await c.buyer('visitor', 'POST', `/v1/orders/${visited}/redeem`)).status).toBe(403);
    const redeemed = await c.admin('POST', `/v1/orders/${visited}/redeem`);
    expect([redeemed.status, redeemed.body.status]).toEqual([200, 'delivered']);
    expect((await c.admin('POST', `/v1/orders/${visited}/redeem`)).status).toBe(200); // idempotent

    // Before the dates end: nothing.
    await e.node.projector.drained();
    expect((await c.admin('POST', '/ops/no-shows')).body.noShows).toBe(0);
    // 2026-12-02 has ended: one no-show (skipped1); twice swept, still one.
    clock.set(Date.parse('2026-12-03T08:00:00Z'));
    c.forgetTokens();
    expect((await c.admin('POST', '/ops/no-shows')).body.noShows).toBe(1);
    await e.node.projector.drained();
    expect((await c.admin('POST', '/ops/no-shows')).body.noShows).toBe(0);
    let buyer = (await c.admin('GET', '/ops/buyers/visitor')).body;
    expect(buyer.noShows.map((n: { orderId: string }) => n.orderId)).toEqual([skipped1]);
    // One no-show is below the rule's 2: a new order passes.
    expect((await c.buyer('visitor', 'POST', '/v1/orders', { skuId: 'show', date: '2026-12-20', qty: 1 })).status).toBe(201);

    // 2026-12-03 ends too: the second no-show; the rule now refuses the buyer.
    clock.set(Date.parse('2026-12-04T08:00:00Z'));
    c.forgetTokens();
    expect((await c.admin('POST', '/ops/no-shows')).body.noShows).toBe(1);
    buyer = (await c.admin('GET', '/ops/buyers/visitor')).body;
    expect(buyer.noShows.map((n: { orderId: string }) => n.orderId).sort()).toEqual([skipped1, skipped2].sort());
    const refused = await c.buyer('visitor', 'POST', '/v1/orders', { skuId: 'show', date: '2026-12-20', qty: 1 });
    expect([refused.status, refused.body.error, refused.body.rule]).toEqual([403, 'limit_exceeded', 'no-show']);
    // The redeemed order never counted; its history says so.
    const history = (await c.admin('GET', `/ops/orders/${visited}`)).body.history.map((h: { cause: string }) => h.cause);
    expect(history).toContain('redeemed');
    expect(history).not.toContain('no_show');
    expect((await c.admin('POST', `/v1/orders/${skipped1}/redeem`)).status).toBe(409);

    // A ticket bought once its date was over (2026-12-02, bought on the 4th) is never a no-show.
    const late = await delivered('latecomer', '2026-12-02');
    await e.node.projector.drained();
    expect((await c.admin('POST', '/ops/no-shows')).body.noShows).toBe(0);
    expect((await c.admin('GET', '/ops/buyers/latecomer')).body.noShows).toEqual([]);
    expect((await c.admin('GET', `/ops/orders/${late}`)).body.history.map((h: { cause: string }) => h.cause)).not.toContain('no_show');
    // Never a no-show, it stays redeemable.
    expect((await c.admin('POST', `/v1/orders/${late}/redeem`)).status).toBe(200);
  });

  it('reaches a ticket order behind delivered orders that are never marked, one pass after another', async () => {
    const c = e.client;
    // A manual SKU's delivered order with a past date is looked at by every sweep and never marked.
    await c.sku('man-ns', '2026-12-05', 10, { delivery: 'manual', priceCents: 0 });
    const manual = await c.buyer('m-user', 'POST', '/v1/orders', { skuId: 'man-ns', date: '2026-12-05', qty: 1 });
    expect(manual.status).toBe(201);
    await until('paid', () => c.buyer('m-user', 'GET', `/v1/orders/${manual.body.orderId}`), (a) => a.body.status === 'paid', 10_000);
    expect((await e.node.orders.deliverManual(manual.body.orderId, { guide: 'x' })).ok).toBe(true);
    await c.sku('show', '2026-12-06', 100, { delivery: 'ticket', priceCents: 0 });
    clock.advance(1_000); // order ids sort by their creation time: the ticket's comes after
    const ticket = await delivered('late-visitor', '2026-12-06');
    expect(manual.body.orderId < ticket).toBe(true);
    clock.set(Date.parse('2026-12-07T08:00:00Z'));
    c.forgetTokens();
    await e.node.projector.drained();
    // One order looked at per pass: only a pass that goes on from the previous one gets to the ticket.
    const deps = (e.node.noShows as unknown as { deps: { orders_per_run_max: number } }).deps;
    const max = deps.orders_per_run_max;
    deps.orders_per_run_max = 1;
    try {
      for (let pass = 0; pass < 4; pass++) expect((await c.admin('POST', '/ops/no-shows')).body.checked).toBeLessThanOrEqual(1);
    } finally {
      deps.orders_per_run_max = max;
    }
    const buyer = (await c.admin('GET', '/ops/buyers/late-visitor')).body;
    expect(buyer.noShows.map((n: { orderId: string }) => n.orderId)).toEqual([ticket]);
  });

  it('refuses a redeem once the order\'s date has passed, before any sweep, and the sweep then counts the no-show', async () => {
    const c = e.client;
    // From the first millisecond after its date (UTC), as the sweep reckons it.
    const order = await deliveredThenPast('late-scan', '2026-12-07', '2026-12-08T00:00:00Z');
    const late = await c.admin('POST', `/v1/orders/${order}/redeem`);
    expect([late.status, late.body.error]).toEqual([409, 'invalid_state']);
    expect(late.body.message).toContain('2026-12-07 has passed');
    await e.node.projector.drained();
    expect((await c.admin('POST', '/ops/no-shows')).body.noShows).toBe(1);
    const buyer = (await c.admin('GET', '/ops/buyers/late-scan')).body;
    expect(buyer.noShows.map((n: { orderId: string }) => n.orderId)).toEqual([order]);
  });

  it('keeps a redeem that races the sweep and the buyer\'s no-show in agreement: the redeem waits for the no-show and is refused', async () => {
    const c = e.client;
    const order = await deliveredThenPast('racer', '2026-12-08', '2026-12-09T08:00:00Z');
    await e.node.projector.drained();
    // The buyer's limit actor answers the sweep's no-show only when told: the redeem comes meanwhile.
    const limits = (e.node.orders as unknown as { limits: { ask: (key: string, msg: { type: string }) => Promise<unknown> } }).limits;
    const ask = limits.ask;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let held = false;
    limits.ask = async function (this: unknown, key, msg) {
      if (msg.type === 'no_show' && key === 'racer') {
        held = true;
        await gate;
      }
      return ask.call(this, key, msg);
    };
    try {
      const sweep = c.admin('POST', '/ops/no-shows');
      await until('the no-show asked', async () => held, (h) => h, 5_000);
      const redeem = c.admin('POST', `/v1/orders/${order}/redeem`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      open();
      const [swept, redeemed] = await Promise.all([sweep, redeem]);
      expect(swept.body.noShows).toBe(1);
      // The date had passed and the sweep was recording it: the order is a no-show, the redeem is refused.
      expect([redeemed.status, redeemed.body.error]).toEqual([409, 'invalid_state']);
    } finally {
      limits.ask = ask;
    }
    await e.node.projector.drained();
    const buyer = (await c.admin('GET', '/ops/buyers/racer')).body;
    expect(buyer.noShows.map((n: { orderId: string }) => n.orderId)).toEqual([order]);
    const history = (await c.admin('GET', `/ops/orders/${order}`)).body.history.map((h: { cause: string }) => h.cause);
    expect(history).toContain('no_show');
    expect(history).not.toContain('redeemed');
  });

  it('never counts a ticket delivered after its date ended (reserved before midnight, paid after) as a no-show; it stays redeemable', async () => {
    const c = e.client;
    const date = new Date(clock.now() + 20 * 86_400_000).toISOString().slice(0, 10);
    await c.sku('show-paid', date, 10, { delivery: 'ticket', priceCents: 500 });
    clock.set(Date.parse(`${date}T23:55:00Z`));
    c.forgetTokens();
    const o = await c.buyer('midnight', 'POST', '/v1/orders', { skuId: 'show-paid', date, qty: 1 });
    expect(o.status).toBe(201);
    // Ten minutes later, past the date's end (the reservation lives an hour): paid and delivered.
    clock.set(Date.parse(`${date}T23:55:00Z`) + 10 * 60_000);
    c.forgetTokens();
    const paid = await c.pay({ orderId: o.body.orderId, paymentId: 'pay-midnight', amountCents: 500, status: 'succeeded' }, { t_s: Math.floor(clock.now() / 1000) });
    expect(paid.body).toEqual({ orderId: o.body.orderId, status: 'paid' });
    await until('delivery', () => c.buyer('midnight', 'GET', `/v1/orders/${o.body.orderId}`), (a) => a.body.status === 'delivered', 10_000);
    await e.node.projector.drained();
    await c.admin('POST', '/ops/no-shows');
    expect((await c.admin('GET', '/ops/buyers/midnight')).body.noShows).toEqual([]);
    // The order's own decision, without the sweep's filter: marking it is a no-op.
    expect(await e.node.orders.recordNoShow((await e.node.stores.projection.order(o.body.orderId))!, Date.parse(`${date}T23:59:59.999Z`) + 1)).toBe(false);
    expect((await c.admin('GET', '/ops/buyers/midnight')).body.noShows).toEqual([]);
    expect((await c.admin('GET', `/ops/orders/${o.body.orderId}`)).body.history.map((h: { cause: string }) => h.cause)).not.toContain('no_show');
    expect((await c.admin('POST', `/v1/orders/${o.body.orderId}/redeem`)).status).toBe(200);
  });

  // Last: it moves the shared clock weeks on.
  it("ends a date at midnight in its venue's time zone (the SKU's timeZone): redeemable in a western evening, a no-show only after its midnight", async () => {
    const c = e.client;
    const date = new Date(clock.now() + 40 * 86_400_000).toISOString().slice(0, 10);
    await c.sku('show-la', date, 100, { delivery: 'ticket', priceCents: 0, attributes: { timeZone: 'America/Los_Angeles' } });
    const orderOf = async (user: string) => {
      const o = await c.buyer(user, 'POST', '/v1/orders', { skuId: 'show-la', date, qty: 1 });
      expect(o.status).toBe(201);
      await until('delivery', () => c.buyer(user, 'GET', `/v1/orders/${o.body.orderId}`), (a) => a.body.status === 'delivered', 10_000);
      return o.body.orderId as string;
    };
    const visitor = await orderOf('la-visitor');
    const absent = await orderOf('la-absent');
    // 19:00 in Los Angeles on the date (03:00 UTC the next day): still the date there.
    const next = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    clock.set(Date.parse(`${next}T03:00:00Z`));
    c.forgetTokens();
    expect((await c.admin('POST', `/v1/orders/${visitor}/redeem`)).status).toBe(200);
    await e.node.projector.drained();
    await c.admin('POST', '/ops/no-shows');
    expect((await c.admin('GET', '/ops/buyers/la-absent')).body.noShows).toEqual([]);
    // Past midnight in Los Angeles (08:00 UTC): a no-show, and too late to redeem.
    clock.set(Date.parse(`${next}T08:00:00Z`));
    c.forgetTokens();
    expect((await c.admin('POST', `/v1/orders/${absent}/redeem`)).status).toBe(409);
    await c.admin('POST', '/ops/no-shows');
    expect((await c.admin('GET', '/ops/buyers/la-absent')).body.noShows.map((n: { orderId: string }) => n.orderId)).toEqual([absent]);
  });
});
