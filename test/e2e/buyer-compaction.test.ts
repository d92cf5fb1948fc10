// Proves a buyer's limit journal stays short however long the buyer keeps buying, on the embedded
// default and on MariaDB + Redis: after COMPACT_AFTER_EVENTS events (order and cancel, over and over,
// plus one paid order) the limit actor writes its whole state as one `restored` record and drops the
// records before it; the buyer's live state is unchanged, a restarted node loads the same state from
// the short journal, and the rules still count the paid order and the open one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buyerStream, COMPACT_AFTER_EVENTS } from '../../actors/limit-actor.ts';
import { ManualClock } from '../../engine/index.ts';
import { engineBackends, startEngine, type TestEngine, restartable, type Backend } from '../support/engine.ts';
import { until } from '../support/poll.ts';

const backends = engineBackends('e2e_buyer_compaction');
const D1 = '2027-04-01';
const D2 = '2027-04-02';

describe.each(backends)('buyer journal compaction on %s', (_name, backend) => {
  let e: TestEngine;
  let kept: Backend;
  const clock = new ManualClock(Date.parse('2027-01-10T10:00:00Z'));
  beforeAll(async () => {
    kept = restartable(await backend());
    e = await startEngine(kept, {}, clock);
    const c = e.client;
    expect((await c.admin('PUT', '/v1/limit-rules/one-a-day', { id: 'one-a-day', groupBy: ['date'], max: { units: 1 } })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/cp-1', { name: 'cp', priceCents: 100, merchantId: 'm1', delivery: 'manual', attributes: {} })).status).toBe(200);
    for (const date of [D1, D2]) expect((await c.admin('PUT', `/v1/skus/cp-1/stock/${date}`, { total: 10 })).status).toBe(200);
  });
  afterAll(async () => e?.stop());

  const events = async (user: string) => (await e.node.stores.journal.readAfter(buyerStream(user), 0)).flatMap((r) => r.events.map((ev) => (ev as { type: string }).type));
  const live = async (user: string) => {
    const b = (await e.client.admin('GET', `/ops/buyers/${user}`)).body;
    return { holds: b.holds, counted: b.counted, usage: b.usage };
  };

  it('folds a long journal into one restored record, and a restarted node loads the same state from it', async () => {
    const c = () => e.client;
    const order = (date: string) => c().buyer('regular', 'POST', '/v1/orders', { skuId: 'cp-1', date, qty: 1 });
    const paid = await order(D1);
    expect(paid.status).toBe(201);
    expect((await c().pay({ orderId: paid.body.orderId, paymentId: 'pay-regular', amountCents: 100, status: 'succeeded' })).body.status).toBe('paid');
    await until('counted', () => live('regular'), (b) => b.counted.length === 1, 5_000);
    // Order and cancel on D2 until the journal has passed the threshold: 2 events a round.
    const rounds = Math.ceil(COMPACT_AFTER_EVENTS / 2) + 2;
    for (let i = 0; i < rounds; i++) {
      const o = await order(D2);
      expect(o.status, `round ${i}`).toBe(201);
      expect((await c().buyer('regular', 'POST', `/v1/orders/${o.body.orderId}/cancel`)).body.status).toBe('cancelled');
    }
    const open = await order(D2);
    expect(open.status).toBe(201);
    await until('compacted', () => events('regular'), (types) => types[0] === 'restored', 5_000);
    const types = await events('regular');
    expect(types.filter((t) => t === 'restored')).toHaveLength(1);
    expect(types.length).toBeLessThan(12);
    const before = await live('regular');
    expect(before.counted.map((o: { orderId: string }) => o.orderId)).toEqual([paid.body.orderId]);
    expect(before.holds.map((o: { orderId: string }) => o.orderId)).toEqual([open.body.orderId]);

    await e.stop();
    e = await startEngine(kept, {}, clock);
    expect(await live('regular')).toEqual(before);
    // The rule still counts both days' orders.
    for (const date of [D1, D2]) expect((await order(date)).body).toMatchObject({ error: 'limit_exceeded', rule: 'one-a-day' });
    // And the cancels' tombstones survived: cancelling an order the buyer cancelled before is still 200.
    expect((await c().buyer('regular', 'POST', `/v1/orders/${open.body.orderId}/cancel`)).body.status).toBe('cancelled');
    expect((await order(D2)).status).toBe(201);
  });
});
