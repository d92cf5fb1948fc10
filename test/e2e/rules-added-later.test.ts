// Proves a purchase rule added during a sale counts the orders its buyers placed before it, on the
// embedded default and on MariaDB + Redis: while some rule exists, every order is held by its buyer's
// limit actor even when no rule matches its SKU, so a rule added later for that SKU refuses a second
// order of a buyer who already has one (API.md: "counting it, any matching rule's group would exceed
// a max"), and leaves other buyers alone.
import { describe, afterAll, beforeAll, expect, it } from 'vitest';
import { startEngine, type TestEngine, engineBackends } from '../support/engine.ts';

const backends = engineBackends('e2e_rules_later');

describe.each(backends)('a rule added during a sale, on %s', (_name, backend) => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine(await backend());
    const c = e.client;
    // A rule for gold SKUs only: the plain SKU below matches no rule when its first orders come.
    expect((await c.admin('PUT', '/v1/limit-rules/gold', { id: 'gold', match: { attributes: { tier: 'gold' } }, groupBy: ['skuId'], max: { units: 5 } })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/plain-1', { name: 'plain', priceCents: 300, merchantId: 'm1', delivery: 'ticket', attributes: { tier: 'plain', venue: 'pv' } })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/plain-1/stock/2026-12-24', { total: 100 })).status).toBe(200);
  });
  afterAll(async () => e?.stop());

  const order = (user: string, qty = 1) => e.client.buyer(user, 'POST', '/v1/orders', { skuId: 'plain-1', date: '2026-12-24', qty });

  it('counts an order placed before the rule existed', async () => {
    expect((await order('early-a', 2)).status).toBe(201);
    expect((await order('early-b')).status).toBe(201);
    // The buyer's limit actor holds it although no rule matched it.
    const buyer = await e.client.admin('GET', '/ops/buyers/early-a');
    expect(buyer.body.holds).toHaveLength(1);

    expect((await e.client.admin('PUT', '/v1/limit-rules/plain-two', { id: 'plain-two', match: { attributes: { tier: 'plain' } }, groupBy: ['skuId', 'date'], max: { units: 2 } })).status).toBe(200);
    const again = await order('early-a');
    expect([again.status, again.body.error, again.body.rule]).toEqual([403, 'limit_exceeded', 'plain-two']);
    // early-b has 1 of 2: one more passes, the next does not; a new buyer is not refused.
    expect((await order('early-b')).status).toBe(201);
    expect((await order('early-b')).status).toBe(403);
    expect((await order('newcomer', 2)).status).toBe(201);
  });
});
