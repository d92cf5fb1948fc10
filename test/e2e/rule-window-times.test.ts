// Proves that a limited order shows the time its buyer's rules counted it at, and that a rolling window
// reaches back from each order's own creation, on a real node (SQLite and MariaDB) whose clock moves on
// at every reading (as under load, where the hold's commit and the reservation come milliseconds or
// more after the order's time): `createdAt` over HTTP equals the held order's in /ops/buyers, and under
// a one-order-per-day rule no second order passes with a createdAt less than 24 h after the first's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../engine/index.ts';
import { startEngine, type TestEngine, engineBackends } from '../support/engine.ts';

/** A clock that ticks one millisecond per reading, and can be set. */
class TickingClock implements Clock {
  constructor(public t_ms: number) {}
  now(): number {
    return this.t_ms++;
  }
}

describe.each(engineBackends('e2e_rule_window_times'))('rule windows and order times on %s', (_name, backend) => {
  let e: TestEngine;
  const clock = new TickingClock(Date.parse('2026-12-10T10:00:00Z'));
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_RESERVATION_TTL_MS: '604800000' }, clock);
    const c = e.client;
    expect((await c.admin('PUT', '/v1/limit-rules/daily', { id: 'daily', window: { rollingDays: 1 }, max: { orders: 1 } })).status).toBe(200);
    await c.sku('window-sku', '2026-12-20', 100, { delivery: 'ticket', priceCents: 500 });
  });
  afterAll(async () => e?.stop());

  it('shows the held time as the order\'s createdAt, and judges 24 h back from each order\'s own creation', async () => {
    const c = e.client;
    const first = await c.buyer('daily-buyer', 'POST', '/v1/orders', { skuId: 'window-sku', date: '2026-12-20', qty: 1 });
    expect(first.status).toBe(201);
    const shown = (await c.buyer('daily-buyer', 'GET', `/v1/orders/${first.body.orderId}`)).body.createdAt as string;
    const held = (await c.admin('GET', '/ops/buyers/daily-buyer')).body.holds as { orderId: string; createdAt: string }[];
    expect(held).toEqual([expect.objectContaining({ orderId: first.body.orderId, createdAt: shown })]);

    // From 50 ms before the first order's 24 h are over (each request reads the clock a few times, so
    // the orders' own times step on): refused while the first was created in the last 24 h before the
    // candidate, and the first one passing was created at least 24 h after it, by the times shown.
    const created = Date.parse(shown);
    clock.t_ms = created + 86_400_000 - 50;
    c.forgetTokens();
    let refused = 0;
    let passed: { orderId: string } | undefined;
    while (!passed && clock.t_ms < created + 86_400_000 + 1_000) {
      const a = await c.buyer('daily-buyer', 'POST', '/v1/orders', { skuId: 'window-sku', date: '2026-12-20', qty: 1 });
      if (a.status === 201) passed = a.body;
      else {
        expect([a.status, a.body.error, a.body.rule]).toEqual([403, 'limit_exceeded', 'daily']);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
    const second = (await c.buyer('daily-buyer', 'GET', `/v1/orders/${passed!.orderId}`)).body.createdAt as string;
    expect(Date.parse(second) - created).toBeGreaterThanOrEqual(86_400_000);
    const counted = (await c.admin('GET', '/ops/buyers/daily-buyer')).body.holds as { orderId: string; createdAt: string }[];
    expect(counted.find((o) => o.orderId === passed!.orderId)?.createdAt).toBe(second);
  });
});
