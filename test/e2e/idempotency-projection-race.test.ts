// Proves an Idempotency-Key keeps its first request's answer through the windows a retry after a 503
// can fall in: a retry whose durable-answer lookup missed the first answer by a read's latency (it
// was projected between the lookup and the reserve) gets the first order, not a second — the
// SKU/date keeps answering a key for a while after the read model took it in; and a retry with the
// key but a body for another SKU/date is 422, not a second order — on the embedded default and on
// MariaDB. The windows are held open with injected faults.
import { describe, expect, it } from 'vitest';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { engineUnderTest, injectJournalFaults, waitFor } from '../support/journal-faults.ts';

describe.each(engineBackends('e2e_idempotency_projection_race'))('a keyed retry racing the projection on %s', (_name, backend) => {
  const t = engineUnderTest<TestEngine>();

  it('answers a retry with the key but a body for another SKU/date 422 after the first attempt\'s 503', async () => {
    const e = (t.engine = await startEngine(await backend(), { STAMPEDE_ASK_TIMEOUT_MS: '400' }));
    const c = e.client;
    await c.sku('race-a', '2027-08-01', 10);
    await c.sku('race-b', '2027-08-01', 10);
    const f = (t.faults = injectJournalFaults(e.node.stores.journal));
    f.only = (stream) => stream === 'race-a/2027-08-01';
    f.hold = true;
    expect((await c.buyer('rb2', 'POST', '/v1/orders', { skuId: 'race-a', date: '2027-08-01', qty: 1 }, { 'idempotency-key': 'k2' })).status).toBe(503);
    const other = await c.buyer('rb2', 'POST', '/v1/orders', { skuId: 'race-b', date: '2027-08-01', qty: 1 }, { 'idempotency-key': 'k2' });
    expect([other.status, other.body.error]).toEqual([422, 'idempotency_key_reused']);
    f.hold = false;
    for (const h of f.held) await h.release();
    expect((await c.admin('GET', '/ops/inventory/race-b/2027-08-01')).body).toMatchObject({ reserved: 0 });
    // The first body again gets its order.
    const again = await c.buyer('rb2', 'POST', '/v1/orders', { skuId: 'race-a', date: '2027-08-01', qty: 1 }, { 'idempotency-key': 'k2' });
    expect(again.status).toBe(201);
    expect((await c.admin('GET', '/ops/inventory/race-a/2027-08-01')).body).toMatchObject({ reserved: 1 });
  });

  it('gets the first order once its answer was projected between the retry\'s lookup and its reserve', async () => {
    const e = (t.engine = await startEngine(await backend(), { STAMPEDE_ASK_TIMEOUT_MS: '400' }));
    const c = e.client;
    await c.sku('race', '2027-08-01', 10);
    const body = { skuId: 'race', date: '2027-08-01', qty: 1 };
    const f = (t.faults = injectJournalFaults(e.node.stores.journal));
    f.only = (stream) => stream === 'race/2027-08-01';
    f.hold = true;
    expect((await c.buyer('rb', 'POST', '/v1/orders', body, { 'idempotency-key': 'rk' })).status).toBe(503);
    await waitFor(() => f.held.length === 1, 5_000, 'the first write');

    // The retry's lookup of a durable answer finds nothing now (none is stored yet: it may not even
    // read, actors/answer-keys.ts) and answers only when told.
    const projection = e.node.stores.projection;
    const lookup = projection.idempotency;
    const orders = e.node.orders;
    const storedAnswer = orders.storedAnswer;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let looked = false;
    orders.storedAnswer = async (userId, key) => {
      const answer = await storedAnswer.call(orders, userId, key);
      looked = true;
      await gate;
      return answer;
    };
    try {
      const retry = c.buyer('rb', 'POST', '/v1/orders', body, { 'idempotency-key': 'rk' });
      await waitFor(() => looked, 5_000, 'the retry\'s lookup');
      f.hold = false;
      await f.held[0]!.release();
      await waitFor(async () => (await lookup.call(projection, 'rb', 'rk')) !== undefined, 5_000, 'the first answer projected');
      open();
      const again = await retry;
      const stored = await lookup.call(projection, 'rb', 'rk');
      expect(again.status).toBe(201);
      expect(again.body.orderId).toBe((stored!.body as { orderId: string }).orderId);
      expect((await c.admin('GET', '/ops/inventory/race/2027-08-01')).body).toMatchObject({ reserved: 1 });
    } finally {
      open();
      orders.storedAnswer = storedAnswer;
    }
  });
});
