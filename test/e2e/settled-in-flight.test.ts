// Proves an order settled by a journal write still in flight is never lost from view: a payment that
// meets its order's expiry then is answered 200 refund_required (never 404 unknown order), and the
// ops listing read then shows the order expired (never leaves it out): the SKU/date's actor answers
// for what it settled once the write commits. The journal write is held by a fault injector so
// the race happens every time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { injectJournalFaults } from '../support/journal-faults.ts';
import { until } from '../support/poll.ts';

const TTL_MS = 60_000;

describe('an order settled by a write in flight', () => {
  let e: TestEngine;
  const clock = new ManualClock(Date.now());
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RESERVATION_TTL_MS: String(TTL_MS) }, clock);
  });
  afterAll(async () => e?.stop());

  /**
   * Reserves `qty` of a fresh SKU/date, lets its expiry be decided while the journal write is held,
   * sends `request` in that window, then lets the write commit and returns the request's answer.
   */
  async function duringHeldExpiry<T>(sku: string, user: string, qty: number, request: (orderId: string, amountCents: number) => Promise<T>): Promise<{ orderId: string; answer: T }> {
    const c = e.client;
    await c.sku(sku, '2026-12-20', 5);
    const order = await c.buyer(user, 'POST', '/v1/orders', { skuId: sku, date: '2026-12-20', qty });
    expect(order.status).toBe(201);
    const faults = injectJournalFaults(e.node.stores.journal);
    faults.only = (stream) => stream === `${sku}/2026-12-20`;
    faults.hold = true;
    try {
      clock.advance(TTL_MS + 1_000);
      await until('the expiry write is in flight', async () => faults.held.length, (n) => n >= 1, 20_000, 20);
      c.forgetTokens();
      const pending = request(order.body.orderId, order.body.amountCents);
      // Give the request time to reach the SKU/date's actor while the expiry is not durable.
      await new Promise((r) => setTimeout(r, 200));
      faults.hold = false;
      for (const h of faults.held.splice(0)) await h.release();
      return { orderId: order.body.orderId, answer: await pending };
    } finally {
      faults.restore();
    }
  }

  it('waits for the expiry to be durable and answers refund_required', async () => {
    const c = e.client;
    const { orderId, answer: paid } = await duringHeldExpiry('race', 'racer', 1, (id, amountCents) => c.pay({ orderId: id, paymentId: 'pi_race', amountCents, status: 'succeeded' }));
    expect(paid.status, JSON.stringify(paid.body)).toBe(200);
    expect(paid.body).toEqual({ orderId, status: 'refund_required' });
    const stock = await c.admin('GET', '/ops/inventory/race/2026-12-20');
    expect(stock.body).toMatchObject({ total: 5, reserved: 0, sold: 0, available: 5 });
  });

  it('is listed by GET /ops/orders once the write commits, not left out', async () => {
    const c = e.client;
    const { orderId, answer: page } = await duringHeldExpiry('race2', 'lister', 2, () => c.admin('GET', '/ops/orders?skuId=race2&date=2026-12-20'));
    expect(page.status).toBe(200);
    expect(page.body.orders.map((o: { orderId: string; status: string }) => [o.orderId, o.status])).toEqual([[orderId, 'expired']]);
  });
});
