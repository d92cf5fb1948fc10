// Proves a SKU/date whose write fails while it holds live reservations comes back on its own: the
// failed write discards its actor (and the expiry timer with it), and without the engine waking it
// again nothing would expire those reservations until a buyer or payment touched that SKU/date — the
// stock would look sold out. Here the expiry pass's own write fails, no request follows, and the
// expired reservation's stock is back on the storefront within seconds, on SQLite and on MariaDB.
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { engineUnderTest, injectJournalFaults, waitFor } from '../support/journal-faults.ts';
import { until } from '../support/poll.ts';

describe.each(engineBackends('e2e_expiry_after_failed_write'))('a failed expiry write on %s', (_name, backend) => {
  const t = engineUnderTest<TestEngine>();

  it('does not leave the expired stock held: the SKU/date is woken, recovers and expires it with no request', async () => {
    const e = (t.engine = await startEngine(await backend(), { STAMPEDE_RESERVATION_TTL_MS: '1000', STAMPEDE_RECONCILE_INTERVAL_MS: '0' }));
    const c = e.client;
    await c.sku('woken', '2027-02-01', 1);
    const placed = await c.buyer('w1', 'POST', '/v1/orders', { skuId: 'woken', date: '2027-02-01', qty: 1 });
    expect(placed.status).toBe(201);
    const f = (t.faults = injectJournalFaults(e.node.stores.journal));
    f.only = (stream) => stream === 'woken/2027-02-01';
    f.hold = true;
    // The expiry pass's write: failed, as a database blip would fail it.
    await waitFor(() => f.held.length === 1, 10_000, 'the expiry write');
    f.hold = false;
    await f.held[0]!.fail(new StoreUnavailableError('injected: the expiry write failed'));

    // No request touches the SKU/date: the storefront's count comes back by itself.
    const page = await until('the expired unit back on sale', () => c.request('GET', '/v1/skus/woken'), (a) => a.body.dates?.[0]?.available === 1, 15_000);
    expect(page.body.dates).toEqual([{ date: '2027-02-01', available: 1 }]);
    expect((await c.buyer('w1', 'GET', `/v1/orders/${placed.body.orderId}`)).body.status).toBe('expired');
    expect((await c.admin('GET', '/ops/inventory/woken/2027-02-01')).body).toMatchObject({ total: 1, reserved: 0, sold: 0, available: 1 });
  });
});
