// Proves the first purchase rule counts the orders placed while no rule existed at all (API.md
// "Purchase rules": counted orders are reserved, paid and delivered ones), on the embedded default and
// on MariaDB + Redis: orders placed with an empty rule book skip the limit actors; the first PUT has
// their buyers adopt them before it answers (actors/rule-adoption.ts), so a live reservation, a paid
// and a delivered order count and a cancelled one does not; an adopted reservation's cancel and expiry
// free the usage at once (its SKU/date now tells the buyer); orders placed after the last rule was
// deleted are adopted by the next first rule; and an adoption left pending by an earlier run (rules
// stored, orders not adopted) runs at the next start, the rules out of force until it is done.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { engineBackends, restartable, startEngine, type Backend, type TestEngine } from '../support/engine.ts';
import { injectJournalFaults, waitFor } from '../support/journal-faults.ts';
import { sampleValue } from '../support/metrics.ts';
import { until } from '../support/poll.ts';

const backends = engineBackends('e2e_first_rule');
const D = '2027-03-01';
const PRICE = 300;
const RULE = { id: 'two-per-date', groupBy: ['skuId', 'date'], max: { units: 2 } };

describe.each(backends)('the first rule adopts the orders placed without rules, on %s', (_name, backend) => {
  let e: TestEngine;
  let kept: Backend;
  const clock = new ManualClock(Date.parse('2027-02-01T10:00:00Z'));
  const start = () => startEngine(kept, { STAMPEDE_RESERVATION_TTL_MS: '60000' }, clock);
  beforeAll(async () => {
    kept = restartable(await backend());
    e = await start();
    for (const sku of ['fa-1', 'fa-2', 'fa-3', 'fa-4', 'fa-5']) {
      expect((await e.client.admin('PUT', `/v1/skus/${sku}`, { name: sku, priceCents: PRICE, merchantId: 'm1', delivery: 'ticket', attributes: {} })).status).toBe(200);
      expect((await e.client.admin('PUT', `/v1/skus/${sku}/stock/${D}`, { total: 1_000 })).status).toBe(200);
    }
  });
  afterAll(async () => e?.stop());

  const order = (user: string, skuId: string, qty = 1) => e.client.buyer(user, 'POST', '/v1/orders', { skuId, date: D, qty });
  const pay = async (orderId: string, qty = 1) =>
    (await e.client.pay({ orderId, paymentId: `pay-${orderId}`, amountCents: PRICE * qty, status: 'succeeded' })).body.status;
  const buyer = async (user: string) => (await e.client.admin('GET', `/ops/buyers/${user}`)).body;
  const ids = (orders: { orderId: string }[]) => orders.map((o) => o.orderId).sort();

  it('counts live, paid and delivered orders placed before any rule, not cancelled ones', async () => {
    const live = await order('holder', 'fa-1', 2);
    const paid = await order('payer', 'fa-1');
    const cancelled = await order('canceller', 'fa-1', 2);
    expect([live.status, paid.status, cancelled.status]).toEqual([201, 201, 201]);
    expect(await pay(paid.body.orderId)).toBe('paid');
    expect((await e.client.buyer('canceller', 'POST', `/v1/orders/${cancelled.body.orderId}/cancel`)).body.status).toBe('cancelled');
    // Ticket orders are delivered right after payment.
    await until('delivered', () => e.client.buyer('payer', 'GET', `/v1/orders/${paid.body.orderId}`), (a) => a.body.status === 'delivered', 10_000);
    // No limit actor has heard of any of them.
    expect((await buyer('holder')).holds).toEqual([]);

    expect((await e.client.admin('PUT', `/v1/limit-rules/${RULE.id}`, RULE)).status).toBe(200);
    // The PUT answered once adopted: the live reservation is a hold, the delivered order counted.
    expect(ids((await buyer('holder')).holds)).toEqual([live.body.orderId]);
    expect(ids((await buyer('payer')).counted)).toEqual([paid.body.orderId]);
    expect((await buyer('canceller')).holds).toEqual([]);

    expect((await order('holder', 'fa-1')).body).toMatchObject({ error: 'limit_exceeded', rule: RULE.id });
    expect((await order('payer', 'fa-1', 2)).body).toMatchObject({ error: 'limit_exceeded', rule: RULE.id });
    expect((await order('payer', 'fa-1')).status).toBe(201);
    expect((await order('canceller', 'fa-1', 2)).status).toBe(201);
  });

  it('an adopted reservation frees its usage at once when cancelled or when it expires', async () => {
    // holder's early order (2 units) is the adopted hold: cancelling it frees both units.
    const early = (await buyer('holder')).holds[0].orderId as string;
    expect((await e.client.buyer('holder', 'POST', `/v1/orders/${early}/cancel`)).body.status).toBe('cancelled');
    await until('hold released', () => buyer('holder'), (b) => b.holds.length === 0, 5_000);
    const again = await order('holder', 'fa-1', 2);
    expect(again.status).toBe(201);

    // Placed with no rule, adopted, then expired: the buyer is told by the SKU/date.
    expect((await e.client.admin('DELETE', `/v1/limit-rules/${RULE.id}`)).status).toBe(204);
    clock.advance(1_000);
    const unlimited = await order('expirer', 'fa-2', 2);
    expect(unlimited.status).toBe(201);
    expect((await e.client.admin('PUT', `/v1/limit-rules/${RULE.id}`, RULE)).status).toBe(200);
    expect(ids((await buyer('expirer')).holds)).toEqual([unlimited.body.orderId]);
    expect((await order('expirer', 'fa-2')).status).toBe(403);
    clock.advance(61_000);
    await until('expiry', () => e.client.buyer('expirer', 'GET', `/v1/orders/${unlimited.body.orderId}`), (a) => a.body.status === 'expired', 10_000);
    await until('usage released', async () => (await order('expirer', 'fa-2', 2)).status, (s) => s === 201, 5_000);
  });

  it('an adoption left pending by an earlier run runs at the next start; its rules wait for it', async () => {
    // (A millisecond apart from the orders before: the book's empty time counts orders made at it.)
    clock.advance(1_000);
    expect((await e.client.admin('DELETE', `/v1/limit-rules/${RULE.id}`)).status).toBe(204);
    clock.advance(1_000);
    const early = await order('sleeper', 'fa-3', 2);
    expect(early.status).toBe(201);
    // As a crash after the rule was stored and before the book forgot its empty time leaves it (or
    // a rule stored by another node): the book is empty since the delete, and the store holds a rule.
    expect(await e.node.stores.rules.emptySince()).toBeGreaterThan(0);
    await e.node.stores.rules.upsert(RULE as never);
    await e.stop();
    e = await start();
    await until('adopted at start', async () => e.node.rules.adoptionPending(), (pending) => !pending, 10_000);
    expect(ids((await buyer('sleeper')).holds)).toEqual([early.body.orderId]);
    expect((await order('sleeper', 'fa-3')).body).toMatchObject({ error: 'limit_exceeded', rule: RULE.id });
    expect(await e.node.stores.rules.emptySince()).toBeNull();
    // Operators see it: the adoption in the metrics, the rule in force in readyz.
    const metrics = (await e.client.admin('GET', '/metrics')).body as string;
    expect(sampleValue(metrics, 'stampede_rule_adoptions_total', { outcome: 'done' })).toBe(1);
    expect(sampleValue(metrics, 'stampede_rule_adopted_orders_total', { status: 'held' })).toBe(1);
    expect(sampleValue(metrics, 'stampede_purchase_rules', { state: 'in_force' })).toBe(1);
    expect(sampleValue(metrics, 'stampede_purchase_rules', { state: 'pending' })).toBe(0);
    expect((await e.client.request('GET', '/readyz')).body.purchaseRules).toEqual({ inForce: 1, pending: 0 });
  });

  it('orders racing the first rule: every one placed is counted by its buyer, whichever side of the PUT it fell on', async () => {
    expect((await e.client.admin('DELETE', `/v1/limit-rules/${RULE.id}`)).status).toBe(204);
    clock.advance(1_000);
    const buyers = Array.from({ length: 150 }, (_, i) => `racer-${i}`);
    const placed = new Map<string, string[]>();
    // The PUT goes out once a fifth of the orders are answered, the others still on their way.
    let answered = 0;
    let firstFifth!: () => void;
    const fifth = new Promise<void>((resolve) => (firstFifth = resolve));
    const orders = buyers.flatMap((user) => [user, user]).map(async (user) => {
      const o = await order(user, 'fa-4');
      expect(o.status).toBe(201);
      placed.set(user, [...(placed.get(user) ?? []), o.body.orderId]);
      if (++answered === 60) firstFifth();
    });
    const put = fifth.then(async () => (await e.client.admin('PUT', `/v1/limit-rules/${RULE.id}`, RULE)).status);
    await Promise.all(orders);
    expect(await put).toBe(200);
    for (const user of buyers) expect(ids((await buyer(user)).holds), user).toEqual([...placed.get(user)!].sort());
    // And the rule holds them to it: 2 units each already.
    expect((await order('racer-0', 'fa-4')).body).toMatchObject({ error: 'limit_exceeded', rule: RULE.id });
  });

  it("an order whose reservation is still being written when the first rule comes is adopted once durable", async () => {
    expect((await e.client.admin('DELETE', `/v1/limit-rules/${RULE.id}`)).status).toBe(204);
    clock.advance(1_000);
    // A SKU/date with no order yet: nothing in the read model says it has live reservations.
    const faults = injectJournalFaults(e.node.stores.journal);
    try {
      faults.only = (stream) => stream === `fa-5/${D}`;
      faults.hold = true;
      const placing = order('writer', 'fa-5', 2);
      await waitFor(() => faults.held.length === 1, 5_000, 'the reservation write');
      let answered = false;
      const put = e.client.admin('PUT', `/v1/limit-rules/${RULE.id}`, RULE).then((a) => ((answered = true), a.status));
      // The adoption waits for the SKU/date, whose reservation is not durable yet.
      await new Promise((r) => setTimeout(r, 100));
      expect(answered).toBe(false);
      faults.hold = false;
      await faults.held[0]!.release();
      const placed = await placing;
      expect(placed.status).toBe(201);
      expect(await put).toBe(200);
      expect(ids((await buyer('writer')).holds)).toEqual([placed.body.orderId]);
      expect((await order('writer', 'fa-5')).body).toMatchObject({ error: 'limit_exceeded', rule: RULE.id });
    } finally {
      faults.restore();
    }
  });
});
