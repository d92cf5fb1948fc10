// Proves reconciliation compares the stock of SKU/dates that are not in memory too, on the embedded
// default and on MariaDB: a sale that passivated before any run compared it, whose read model then
// gained a paid order its journal never had, is woken and reported `stock_mismatch` (a finished sale
// is what such a difference is found in); and a SKU/date compared with no difference and unchanged since is not
// woken again by later runs (its passivation stands); and a run answers while the read model cannot be
// written (no SKU/date in memory waits for it; those woken wait once, a bounded time); and a SKU/date
// that cannot recover is reported and the ones after it are still compared, while a store that is
// unavailable ends the check at once (not one timeout per SKU/date).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Finding, type ReconcileReport } from '../../actors/reconciler.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import type { SqlDatabase } from '../../persistence/sql/database.ts';
import { engineBackends, startEngine, type TestEngine } from '../support/engine.ts';
import { until } from '../support/poll.ts';

const about = (report: ReconcileReport, id: string): Finding[] => report.findings.filter((f) => f.id === id);

describe.each(engineBackends('e2e_reconcile_passivated'))('reconciliation of SKU/dates not in memory on %s', (_name, backend) => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_IDLE_MS: '300', STAMPEDE_RECONCILE_INTERVAL_MS: '0', STAMPEDE_RESERVATION_TTL_MS: '600000' });
  });
  afterAll(async () => e?.stop());

  async function reconcile(): Promise<ReconcileReport> {
    const a = await e.client.admin('POST', '/ops/reconcile');
    expect(a.status).toBe(200);
    return a.body as ReconcileReport;
  }

  /** A manual SKU/date with one paid order of `qty`, its read model caught up, then passivated. */
  async function soldThenAsleep(skuId: string, qty: number): Promise<{ stream: string; orderId: string }> {
    const c = e.client;
    const date = '2027-10-01';
    await c.sku(skuId, date, 10, { delivery: 'manual', priceCents: 100 });
    const o = await c.buyer(`${skuId}-u`, 'POST', '/v1/orders', { skuId, date, qty });
    expect(o.status).toBe(201);
    expect((await c.pay({ orderId: o.body.orderId, paymentId: `pay-${skuId}`, amountCents: 100 * qty, status: 'succeeded' })).body.status).toBe('paid');
    await e.node.projector.drained();
    const stream = `${skuId}/${date}`;
    await until(`${stream} passivated`, async () => e.node.inventory.has(stream), (live) => !live, 10_000);
    return { stream, orderId: o.body.orderId as string };
  }

  it('answers a run while the read model cannot be written (a database outage): what needs it waits for the next run', async () => {
    const c = e.client;
    const dates = ['2027-10-02', '2027-10-03', '2027-10-04'];
    for (const date of dates) await c.sku('rp-out', date, 10, { delivery: 'manual', priceCents: 100 });
    const projection = e.node.stores.projection;
    const apply = projection.apply;
    projection.apply = async () => {
      throw new Error('injected: the read model cannot be written');
    };
    // Waits for the read model (each a bounded PROJECTION_WAIT_MS) are counted.
    const projector = e.node.projector;
    const caughtUp = projector.caughtUp;
    let waits = 0;
    projector.caughtUp = () => (waits++, caughtUp.call(projector));
    const orderIds: string[] = [];
    try {
      for (const date of dates) {
        const o = await c.buyer(`rp-out-${date}`, 'POST', '/v1/orders', { skuId: 'rp-out', date, qty: 1 });
        expect(o.status).toBe(201);
        orderIds.push(o.body.orderId as string);
      }
      // Three SKU/dates in memory whose read model is behind: the run answers (the test's own timeout
      // is the hang guard) without one wait for the read model, and finds nothing to report yet.
      const report = await reconcile();
      expect(waits).toBe(0);
      for (const date of dates) expect(about(report, `rp-out/${date}`)).toEqual([]);
    } finally {
      projection.apply = apply;
      projector.caughtUp = caughtUp;
    }
    // The outage over, the same SKU/dates are compared: none was passed over for good. Each order is
    // paid, and a paid order its journal never had is planted in each one's read model: reported for each.
    for (const [k, orderId] of orderIds.entries()) {
      expect((await c.pay({ orderId, paymentId: `pay-rp-out-${k}`, amountCents: 100, status: 'succeeded' })).body.status).toBe('paid');
      const row = (await until(`${orderId} paid in the read model`, () => projection.order(orderId), (r) => r?.status === 'paid', 20_000))!;
      await projection.apply({ orders: [{ ...row, orderId: `${orderId}-ghost` }], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox: [] });
    }
    const after = await reconcile();
    for (const date of dates) {
      expect(about(after, `rp-out/${date}`)).toEqual([
        { kind: 'stock_mismatch', id: `rp-out/${date}`, detail: 'inventory sold 1, orders paid or delivered hold 2 units', action: 'reported' },
      ]);
    }
  }, 30_000);

  it('wakes a passivated SKU/date never compared and reports a paid order its read model holds that its journal never had', async () => {
    const { stream, orderId } = await soldThenAsleep('rp-extra', 2);
    // Behind the engine's back, a row no journal event covers (a lost row would be written back by
    // the woken SKU/date, which hands its events after its snapshot to the projector again).
    const projection = e.node.stores.projection;
    const row = (await projection.order(orderId))!;
    await projection.apply({ orders: [{ ...row, orderId: `${orderId}-ghost` }], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox: [] });
    expect(about(await reconcile(), stream)).toEqual([
      { kind: 'stock_mismatch', id: stream, detail: 'inventory sold 2, orders paid or delivered hold 4 units', action: 'reported' },
    ]);
  });

  it('does not wake again a SKU/date compared with no difference and unchanged since', async () => {
    const { stream } = await soldThenAsleep('rp-clean', 1);
    // Compared once (woken for it), with no difference.
    expect(about(await reconcile(), stream)).toEqual([]);
    await until(`${stream} passivated again`, async () => e.node.inventory.has(stream), (live) => !live, 10_000);
    const report = await reconcile();
    expect(about(report, stream)).toEqual([]);
    expect(e.node.inventory.has(stream)).toBe(false);
  });
  it('goes on past a SKU/date that cannot recover: it is reported, the ones after it are compared', async () => {
    const broken = await soldThenAsleep('rp-broken', 1);
    const { stream, orderId } = await soldThenAsleep('rp-after', 2);
    // A journal record past a gap: the SKU/date's recovery fails on it, every time.
    const db = (e.node.stores.journal as unknown as { db: SqlDatabase }).db;
    await db.run('test: a record past a gap', 'INSERT INTO journal (stream, seq, last_seq, at, events) VALUES (?, ?, ?, ?, ?)', [broken.stream, 1_000, 1_000, 1, Buffer.from('[]')]);
    const projection = e.node.stores.projection;
    const row = (await projection.order(orderId))!;
    await projection.apply({ orders: [{ ...row, orderId: `${orderId}-ghost` }], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox: [] });
    const report = await reconcile();
    expect(about(report, broken.stream).map((f) => f.kind)).toEqual(['check_failed']);
    expect(about(report, stream)).toEqual([
      { kind: 'stock_mismatch', id: stream, detail: 'inventory sold 2, orders paid or delivered hold 4 units', action: 'reported' },
    ]);
  });
  it('ends the stock check at the first store that is unavailable, instead of failing every SKU/date on its own timeout', async () => {
    const c = e.client;
    for (const date of ['2027-10-05', '2027-10-06', '2027-10-07']) await c.sku('rp-down', date, 10, { delivery: 'manual', priceCents: 100 });
    await e.node.projector.drained();
    const projection = e.node.stores.projection;
    const count = projection.countByStatus;
    let asked = 0;
    projection.countByStatus = async () => {
      asked++;
      throw new StoreUnavailableError('injected: the database does not answer');
    };
    try {
      const report = await reconcile();
      expect(asked).toBe(1);
      expect(report.findings.filter((f) => f.kind === 'check_failed').map((f) => f.id)).toEqual(['stock']);
    } finally {
      projection.countByStatus = count;
    }
  });
});
