// Proves an Idempotency-Key retry of a rule-bound order whose first attempt timed out (503) while its
// reservation was still being written gets the first order's answer once it is durable — the same
// 201 and order — not a 403 from the purchase rule that the first order's own hold fills; on the
// embedded default and on MariaDB.
import { describe, expect, it } from 'vitest';
import { decodeEvent } from '../../actors/inventory-codec.ts';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { engineUnderTest, injectJournalFaults, waitFor } from '../support/journal-faults.ts';

describe.each(engineBackends('e2e_keyed_retry_limited'))('a keyed retry of a rule-bound order on %s', (_name, backend) => {
  const t = engineUnderTest<TestEngine>();

  it('gets the first attempt\'s 201 once it is durable, not the rule\'s 403', async () => {
    // The first attempt's ask times out (its write is held); the retry's asks must not time out while
    // the test releases the write, which it does as soon as the retry has reached the buyer's actor.
    const e = (t.engine = await startEngine(await backend(), { STAMPEDE_ASK_TIMEOUT_MS: '1000' }));
    const c = e.client;
    await c.sku('keyed', '2027-06-01', 10, { attributes: { venue: 'v1' } });
    expect((await c.admin('PUT', '/v1/limit-rules/one', { groupBy: ['venue'], max: { units: 1 } })).status).toBe(200);
    const f = (t.faults = injectJournalFaults(e.node.stores.journal));
    f.only = (stream) => stream === 'keyed/2027-06-01';
    f.hold = true;
    const body = { skuId: 'keyed', date: '2027-06-01', qty: 1 };
    const first = await c.buyer('kb', 'POST', '/v1/orders', body, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(503); // its reservation is still being written
    await waitFor(() => f.held.length === 1, 5_000, 'the first attempt\'s write');
    const [firstOrderId] = f.held[0]!.records.flatMap((r) => r.events.map((raw) => decodeEvent(raw))).flatMap((ev) => (ev.type === 'reserved' ? [ev.orderId] : []));
    // The retry's hold (at the buyer's limit actor) and its question to the SKU/date for the key's
    // first answer are watched, each with whether the first attempt's write was still held then.
    let released = false;
    const holds: boolean[] = [];
    const firstAnswerAsked: boolean[] = [];
    const { limitActors, inventory } = e.node;
    const realHold = limitActors.ask.bind(limitActors);
    limitActors.ask = ((userId: string, msg: Parameters<typeof realHold>[1], timeoutMs?: number) => {
      if (msg.type === 'hold') holds.push(!released);
      return realHold(userId, msg, timeoutMs);
    }) as typeof limitActors.ask;
    const realAsk = inventory.ask.bind(inventory);
    inventory.ask = ((stream: string, msg: Parameters<typeof realAsk>[1], timeoutMs?: number) => {
      if (msg.type === 'idempotency_answer') firstAnswerAsked.push(!released);
      return realAsk(stream, msg, timeoutMs);
    }) as typeof inventory.ask;
    const retry = c.buyer('kb', 'POST', '/v1/orders', body, { 'idempotency-key': 'k-1' });
    // Released only once the retry is in the engine, its hold on its way while the write is held.
    await waitFor(() => holds.length === 1, 5_000, 'the retry\'s hold sent');
    f.hold = false;
    released = true;
    await f.held[0]!.release();
    const again = await retry;
    expect(holds).toEqual([true]);
    // Its hold refused by the first order's own, it took the key's first answer from the SKU/date:
    // the first attempt's order, not a second one nor the rule's 403.
    expect(firstAnswerAsked).toHaveLength(1);
    expect(again.status).toBe(201);
    expect(again.body.orderId).toBe(firstOrderId);
    expect((await c.buyer('kb', 'GET', `/v1/orders/${again.body.orderId}`)).body.status).toBe('reserved');
    expect((await c.admin('GET', '/ops/inventory/keyed/2027-06-01')).body).toMatchObject({ reserved: 1 });
    // Another key is a new order: the rule refuses it.
    expect((await c.buyer('kb', 'POST', '/v1/orders', body, { 'idempotency-key': 'k-2' })).status).toBe(403);
  });
});
