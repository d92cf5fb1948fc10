// Proves an Idempotency-Key retry of a rule-bound order whose first attempt timed out (503) while its
// reservation was still being written gets the first order's answer once it is durable — the same
// 201 and order — not a 403 from the purchase rule that the first order's own hold fills; on the
// embedded default and on MariaDB.
import { describe, expect, it } from 'vitest';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { engineUnderTest, injectJournalFaults, waitFor } from '../support/journal-faults.ts';

describe.each(engineBackends('e2e_keyed_retry_limited'))('a keyed retry of a rule-bound order on %s', (_name, backend) => {
  const t = engineUnderTest<TestEngine>();

  it('gets the first attempt\'s 201 once it is durable, not the rule\'s 403', async () => {
    const e = (t.engine = await startEngine(await backend(), { STAMPEDE_ASK_TIMEOUT_MS: '400' }));
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
    const retry = c.buyer('kb', 'POST', '/v1/orders', body, { 'idempotency-key': 'k-1' });
    await new Promise((r) => setTimeout(r, 100));
    f.hold = false;
    await f.held[0]!.release();
    const again = await retry;
    expect(again.status).toBe(201);
    expect((await c.buyer('kb', 'GET', `/v1/orders/${again.body.orderId}`)).body.status).toBe('reserved');
    expect((await c.admin('GET', '/ops/inventory/keyed/2027-06-01')).body).toMatchObject({ reserved: 1 });
    // Another key is a new order: the rule refuses it.
    expect((await c.buyer('kb', 'POST', '/v1/orders', body, { 'idempotency-key': 'k-2' })).status).toBe(403);
  });
});
