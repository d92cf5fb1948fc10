// Proves a long-lived buyer's limit state stays about the rules' windows, on the embedded default and
// on MariaDB + Redis: 70 paid orders of one buyer under a 30-day rule are counted while in the window;
// 40 days later (a node clock moved on), the buyer's next order prunes them from its limit actor, and
// the prune is journaled, so a restarted node finds the same state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRUNE_AT_ENTRIES } from '../../actors/limit-actor.ts';
import { DAY_MS, ManualClock } from '../../engine/index.ts';
import { engineBackends, startEngine, type TestEngine, restartable, type Backend } from '../support/engine.ts';

const backends = engineBackends('e2e_buyer_prune');

describe.each(backends)('buyer state pruning on %s', (_name, backend) => {
  let e: TestEngine;
  let kept: Backend;
  const clock = new ManualClock(Date.parse('2027-01-05T10:00:00Z'));
  beforeAll(async () => {
    kept = restartable(await backend());
    e = await startEngine(kept, {}, clock);
    const c = e.client;
    expect((await c.admin('PUT', '/v1/limit-rules/month', { id: 'month', groupBy: ['skuId'], window: { rollingDays: 30 }, max: { units: 500 } })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/pr-1', { name: 'pr', priceCents: 100, merchantId: 'm1', delivery: 'manual', attributes: {} })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/pr-1/stock/2027-03-01', { total: 1_000 })).status).toBe(200);
  });
  afterAll(async () => e?.stop());

  const counted = async (user: string) => ((await e.client.admin('GET', `/ops/buyers/${user}`)).body.counted as { orderId: string }[]).map((o) => o.orderId);

  it('drops paid orders no rule can reach any more, and keeps that across a restart', async () => {
    const c = e.client;
    const n = PRUNE_AT_ENTRIES + 6;
    for (let i = 0; i < n; i++) {
      const o = await c.buyer('loyal', 'POST', '/v1/orders', { skuId: 'pr-1', date: '2027-03-01', qty: 1 });
      expect(o.status).toBe(201);
      expect((await c.pay({ orderId: o.body.orderId, paymentId: `pay-loyal-${i}`, amountCents: 100, status: 'succeeded' })).body.status).toBe('paid');
    }
    expect(await counted('loyal')).toHaveLength(n);

    // 40 days on: the 30-day rule (and the month prune always keeps) no longer reach those orders.
    clock.advance(40 * DAY_MS);
    c.forgetTokens();
    const next = await c.buyer('loyal', 'POST', '/v1/orders', { skuId: 'pr-1', date: '2027-03-01', qty: 1 });
    expect(next.status).toBe(201);
    const state = await c.admin('GET', '/ops/buyers/loyal');
    expect(state.body.counted).toEqual([]);
    expect(state.body.holds.map((h: { orderId: string }) => h.orderId)).toEqual([next.body.orderId]);

    // The prune is in the buyer's journal: a new node reads the same state.
    await e.stop();
    e = await startEngine(kept, {}, clock);
    const again = await e.client.admin('GET', '/ops/buyers/loyal');
    expect(again.body.counted).toEqual([]);
    expect(again.body.holds.map((h: { orderId: string }) => h.orderId)).toEqual([next.body.orderId]);
  });
});
