// Proves reconciliation finds and safely repairs, on the embedded default and on MariaDB + Redis: with the node's delivery consumer stopped and no delivery started in process after a payment, a paid ticket order left undelivered past the grace period is reported `paid_not_delivered` / `repaired` by `POST /ops/reconcile` and is then delivered (and a second run finds nothing), a read-model row deleted behind the engine's back is reported `stock_mismatch` and left alone, card keys assigned behind its back are reported `card_keys_mismatch` once the difference stays for a second run, `stampede ops reconcile` prints the same report and exits 0, and every finding is counted in `stampede_reconciliation_total{finding,action}` — against a real node on a real port.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { OverloadedError } from '../../actors/runtime/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InventoryInspection } from '../../actors/inventory-actor.ts';
import type { Finding, ReconcileReport } from '../../actors/reconciler.ts';
import type { SqlDatabase } from '../../persistence/sql/database.ts';
import { CardKeyCipher } from '../../persistence/card-key-cipher.ts';
import { SECRETS, startEngine, switchOffDelivery, type TestEngine } from '../support/engine.ts';
import { injectJournalFaults, waitFor } from '../support/journal-faults.ts';
import { samples } from '../support/metrics.ts';
import { until } from '../support/poll.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';

const BIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'stampede.mjs');
/** Our own Redis db: no snapshot of an earlier run may stand in for this run's streams. */
const REDIS_DB_URL = `${REDIS_URL}/11`;

const backends = [
  ['embedded SQLite', async () => ({ kind: 'sqlite' as const })],
  [
    'MariaDB + Redis',
    async () => {
      const redis = new Redis(REDIS_DB_URL);
      await redis.flushdb();
      redis.disconnect();
      return { kind: 'mysql' as const, url: await freshMysqlDatabase('e2e_reconciliation'), redisUrl: REDIS_DB_URL };
    },
  ],
] as const;

/** Runs `stampede ops reconcile` against the node; its exit code and output. */
function cli(url: string, token: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, 'ops', 'reconcile'],
      { env: { ...process.env, STAMPEDE_URL: url, STAMPEDE_ADMIN_TOKEN: token }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const about = (report: ReconcileReport, id: string): Finding[] => report.findings.filter((f) => f.id === id);

describe.each(backends)('reconciliation on %s', (_name, backend) => {
  let e: TestEngine;
  /** Every report of this node (HTTP and CLI), to check the metric counts them all. */
  const reports: ReconcileReport[] = [];

  /** A paid order of 100 cents of `user` (order ids sort by creation time to the ms: a few ms apart). */
  async function paidOrder(user: string, skuId: string, date: string): Promise<string> {
    await new Promise((r) => setTimeout(r, 5));
    const o = await e.client.buyer(user, 'POST', '/v1/orders', { skuId, date, qty: 1 });
    expect(o.status).toBe(201);
    expect((await e.client.pay({ orderId: o.body.orderId, paymentId: `pay-${user}`, amountCents: 100, status: 'succeeded' })).body.status).toBe('paid');
    return o.body.orderId as string;
  }

  async function reconcile(): Promise<ReconcileReport> {
    const a = await e.client.admin('POST', '/ops/reconcile');
    expect(a.status).toBe(200);
    reports.push(a.body as ReconcileReport);
    return a.body as ReconcileReport;
  }

  beforeAll(async () => {
    e = await startEngine(await backend(), {
      STAMPEDE_DELIVERY_GRACE_MS: '100',
      STAMPEDE_RECONCILE_INTERVAL_MS: '0',
      STAMPEDE_RESERVATION_TTL_MS: '600000',
    });
    await switchOffDelivery(e);
  });
  afterAll(async () => e?.stop());

  it('repairs a paid ticket order whose delivery never happened, then finds nothing for it', async () => {
    const c = e.client;
    await c.sku('rc-tix', '2026-12-20', 10, { delivery: 'ticket', priceCents: 800 });
    const o = await c.buyer('rc-a', 'POST', '/v1/orders', { skuId: 'rc-tix', date: '2026-12-20', qty: 2 });
    expect(o.status).toBe(201);
    const orderId = o.body.orderId as string;
    expect((await c.pay({ orderId, paymentId: 'pay-rc-a', amountCents: 1600, status: 'succeeded' })).body).toEqual({ orderId, status: 'paid' });
    expect((await c.buyer('rc-a', 'GET', `/v1/orders/${orderId}`)).body).toMatchObject({ status: 'paid', awaitingDelivery: true });

    // Once the read model has it paid and the 100 ms grace has passed, a run finds and repairs it.
    const report = await until('a finding for the undelivered order', reconcile, (r) => about(r, orderId).length > 0, 10_000);
    expect(about(report, orderId)).toEqual([{ kind: 'paid_not_delivered', id: orderId, detail: expect.stringContaining('delivered now'), action: 'repaired' }]);
    expect(report.repaired).toBeGreaterThanOrEqual(1);
    expect(report.checked.paidOrders).toBeGreaterThanOrEqual(1);

    const got = await c.buyer('rc-a', 'GET', `/v1/orders/${orderId}`);
    expect(got.body.status).toBe('delivered');
    expect(got.body.delivery.payload.tickets).toHaveLength(2);
    expect(got.body.awaitingDelivery).toBeUndefined();
    const ops = await c.admin('GET', `/ops/orders/${orderId}`);
    expect(ops.body.history.filter((h: { status: string }) => h.status === 'delivered')).toHaveLength(1);

    // A second run: nothing about this order, and the same codes.
    expect(about(await reconcile(), orderId)).toEqual([]);
    expect((await c.buyer('rc-a', 'GET', `/v1/orders/${orderId}`)).body.delivery.payload.tickets).toEqual(got.body.delivery.payload.tickets);
  });

  it('reports an order row deleted from the read model as stock_mismatch, and repairs nothing', async () => {
    const c = e.client;
    // Manual delivery: the reconciler leaves paid manual orders to the merchant.
    await c.sku('rc-del', '2026-12-21', 10, { delivery: 'manual', priceCents: 500 });
    const stream = 'rc-del/2026-12-21';
    const ids: string[] = [];
    for (const [i, qty] of [1, 2].entries()) {
      const o = await c.buyer(`rc-b${i}`, 'POST', '/v1/orders', { skuId: 'rc-del', date: '2026-12-21', qty });
      expect(o.status).toBe(201);
      expect((await c.pay({ orderId: o.body.orderId, paymentId: `pay-rc-b${i}`, amountCents: 500 * qty, status: 'succeeded' })).body.status).toBe('paid');
      ids.push(o.body.orderId);
    }
    const projection = e.node.stores.projection;
    await until('both orders paid in the read model', () => Promise.all(ids.map((id) => projection.order(id))), (rows) => rows.every((r) => r?.status === 'paid'));
    // Every projection of these orders written (the row is projected from the SKU/date's `sold` and
    // from the order's own `order.paid`: a late one would put the deleted row back).
    await e.node.projector.drained();
    const consistent = await reconcile();
    expect(about(consistent, stream)).toEqual([]);

    // Behind the engine's back: the row of the qty-2 order goes.
    const db = (projection as unknown as { db: SqlDatabase }).db;
    expect((await db.run('test: delete a read-model row', 'DELETE FROM orders WHERE order_id = ?', [ids[1]])).affectedRows).toBe(1);

    const report = await until('a stock finding', reconcile, (r) => about(r, stream).length > 0, 10_000);
    expect(about(report, stream)).toEqual([
      { kind: 'stock_mismatch', id: stream, detail: 'inventory sold 3, orders paid or delivered hold 1 units', action: 'reported' },
    ]);
    expect(report.findings.filter((f) => f.action === 'repaired' && (f.id === stream || ids.includes(f.id)))).toEqual([]);
    // Nothing was changed to make the difference go away: the row is still gone, the stock still sold.
    expect(await projection.order(ids[1]!)).toBeUndefined();
    expect((await c.admin('GET', `/ops/inventory/rc-del/2026-12-21`)).body).toMatchObject({ sold: 3, reserved: 0 });
    expect(about(await reconcile(), stream).map((f) => [f.kind, f.action])).toEqual([['stock_mismatch', 'reported']]);
  });

  it('reports card keys assigned behind the engine\'s back once the difference stays for a second run, and repairs nothing', async () => {
    const c = e.client;
    await c.sku('rc-keys', 'open', 0, { delivery: 'card_key', priceCents: 300 });
    expect((await c.admin('POST', '/v1/skus/rc-keys/card-keys', { keys: ['RCK-1', 'RCK-2', 'RCK-3'] })).status).toBe(200);
    const o = await c.buyer('rc-k', 'POST', '/v1/orders', { skuId: 'rc-keys', date: 'open', qty: 1 });
    expect(o.status).toBe(201);
    expect((await c.pay({ orderId: o.body.orderId, paymentId: 'pay-rc-k', amountCents: 300, status: 'succeeded' })).body.status).toBe('paid');
    // Its delivery was switched off here: a run delivers it (paid_not_delivered), with one key.
    await until('the order delivered by a run', async () => (await reconcile(), (await c.buyer('rc-k', 'GET', `/v1/orders/${o.body.orderId}`)).body.status), (st) => st === 'delivered', 10_000);
    await e.node.projector.drained();
    expect(about(await reconcile(), 'rc-keys')).toEqual([]);
    // Behind the engine's back: two keys given to an order that does not exist.
    const db = (e.node.stores.projection as unknown as { db: SqlDatabase }).db;
    expect((await db.run('test: assign keys', "UPDATE card_keys SET order_id = 'nobody' WHERE id IN (SELECT id FROM (SELECT id FROM card_keys WHERE sku_id = ? AND order_id IS NULL ORDER BY id LIMIT 2) AS k)", ['rc-keys'])).affectedRows).toBe(2);
    // The first run sees it once (a sale in flight can look the same for a moment); the second reports
    // it, though the sale went on between them (another order paid: the figures moved).
    expect(about(await reconcile(), 'rc-keys')).toEqual([]);
    const more = await c.buyer('rc-k2', 'POST', '/v1/orders', { skuId: 'rc-keys', date: 'open', qty: 1 });
    expect((await c.pay({ orderId: more.body.orderId, paymentId: 'pay-rc-k2', amountCents: 300, status: 'succeeded' })).body.status).toBe('paid');
    expect(about(await reconcile(), 'rc-keys')).toEqual([
      { kind: 'card_keys_mismatch', id: 'rc-keys', detail: expect.stringMatching(/^[34] keys assigned; delivered and paid orders hold 2 units$/), action: 'reported' },
    ]);
    expect((await c.buyer('rc-k', 'GET', `/v1/orders/${o.body.orderId}`)).body.delivery.cardKeys).toHaveLength(1);
  });

  it('reports the paid orders waiting for card keys once per SKU, not once per order', async () => {
    const c = e.client;
    // Stock set above the keys (none): paid orders wait for an upload.
    await c.sku('rc-dry', 'open', 5, { delivery: 'card_key', priceCents: 100 });
    const ids = [await paidOrder('rc-dry-1', 'rc-dry', 'open'), await paidOrder('rc-dry-2', 'rc-dry', 'open'), await paidOrder('rc-dry-3', 'rc-dry', 'open')];
    await e.node.projector.drained();
    const report = await until('the three waiting orders found', reconcile, (r) => about(r, 'rc-dry')[0]?.detail.startsWith('3 ') === true, 10_000);
    expect(about(report, 'rc-dry')).toEqual([{ kind: 'awaiting_card_keys', id: 'rc-dry', detail: expect.stringMatching(/^3 paid orders of rc-dry \(\S+ among them\) wait for card keys/), action: 'reported' }]);
    for (const id of ids) expect(about(report, id)).toEqual([]);
  });

  it('counts card keys stored but missing from the stock (an upload whose stock change failed), once', async () => {
    const c = e.client;
    await c.sku('rc-uncounted', 'open', 0, { delivery: 'card_key', priceCents: 300 });
    expect((await c.admin('POST', '/v1/skus/rc-uncounted/card-keys', { keys: ['RCU-1', 'RCU-2'] })).body).toMatchObject({ added: 2, total: 2 });
    expect(about(await reconcile(), 'rc-uncounted')).toEqual([]);
    // Three more keys stored, their stock change never made (as when the SKU/date answered overloaded).
    const cipher = new CardKeyCipher(SECRETS.STAMPEDE_CARD_KEY_SECRET);
    const keys = ['RCU-3', 'RCU-4', 'RCU-5'].map((k) => ({ hash: cipher.hash('rc-uncounted', k), ciphertext: cipher.encrypt('rc-uncounted', k) }));
    expect(await e.node.stores.cardKeys.add('rc-uncounted', keys)).toBe(3);
    expect((await c.request('GET', '/v1/skus/rc-uncounted')).body.dates).toEqual([expect.objectContaining({ date: 'open', available: 2 })]);
    const told: string[] = [];
    const orders = e.node.orders;
    const keysCounted = orders.keysCounted.bind(orders);
    orders.keysCounted = (skuId: string) => {
      told.push(skuId);
      keysCounted(skuId);
    };
    try {
      expect(about(await reconcile(), 'rc-uncounted')).toEqual([
        { kind: 'card_keys_uncounted', id: 'rc-uncounted', detail: '3 stored keys were not in the stock; counted now (total 5)', action: 'repaired' },
      ]);
    } finally {
      orders.keysCounted = keysCounted;
    }
    // Its orders parked for keys are told at once (not left to the delivery actor's recheck).
    expect(told).toEqual(['rc-uncounted']);
    expect((await c.request('GET', '/v1/skus/rc-uncounted')).body.dates).toEqual([expect.objectContaining({ date: 'open', available: 5 })]);
    expect(about(await reconcile(), 'rc-uncounted')).toEqual([]);
    // A first upload whose keys were stored before its stock's date was made: the date is made too.
    await c.admin('PUT', '/v1/skus/rc-undated', { name: 'rc-undated', priceCents: 300, merchantId: 'm1', delivery: 'card_key' });
    const undated = ['RCD-1', 'RCD-2'].map((k) => ({ hash: cipher.hash('rc-undated', k), ciphertext: cipher.encrypt('rc-undated', k) }));
    expect(await e.node.stores.cardKeys.add('rc-undated', undated)).toBe(2);
    expect((await c.request('GET', '/v1/skus/rc-undated')).body.dates).toEqual([]);
    expect(about(await reconcile(), 'rc-undated').map((f) => [f.kind, f.action])).toEqual([['card_keys_uncounted', 'repaired']]);
    expect((await c.request('GET', '/v1/skus/rc-undated')).body.dates).toEqual([expect.objectContaining({ date: 'open', available: 2 })]);
  });

  it('reports no stock mismatch for a sale whose journal write is still in flight', async () => {
    const c = e.client;
    await c.sku('rc-fly', '2026-12-22', 10, { delivery: 'manual', priceCents: 700 });
    const stream = 'rc-fly/2026-12-22';
    const o = await c.buyer('rc-f', 'POST', '/v1/orders', { skuId: 'rc-fly', date: '2026-12-22', qty: 2 });
    expect(o.status).toBe(201);
    const orderId = o.body.orderId as string;
    await until('the reservation projected', () => e.node.inventory.ask<InventoryInspection>(stream, { type: 'inspect' }), (i) => i.projectedSeq === i.journalSeq);
    // The SKU/date's next write (the sale, with the order's own `paid`) is held: sold in memory, not yet in the journal.
    const faults = injectJournalFaults(e.node.stores.journal);
    faults.only = (s) => s === stream || s === `@o/${orderId}`;
    faults.hold = true;
    try {
      const paying = c.pay({ orderId, paymentId: 'pay-rc-f', amountCents: 1400, status: 'succeeded' });
      await waitFor(() => faults.held.length === 1, 5_000, 'the sale held');
      const inspection = await e.node.inventory.ask<InventoryInspection>(stream, { type: 'inspect' });
      expect([inspection.sold, inspection.durableSold]).toEqual([2, 0]);
      expect(about(await reconcile(), stream)).toEqual([]);
      faults.hold = false;
      await faults.held[0]!.release();
      expect((await paying).body).toEqual({ orderId, status: 'paid' });
    } finally {
      faults.restore();
    }
    await until('the sale in the read model', () => e.node.stores.projection.order(orderId), (r) => r?.status === 'paid');
    await until('the SKU/date projected', () => e.node.inventory.ask<InventoryInspection>(stream, { type: 'inspect' }), (i) => i.projectedSeq === i.journalSeq);
    expect(about(await reconcile(), stream)).toEqual([]);
  });

  it('repairs the other paid orders when one delivery fails, and each run goes on after the paid orders the previous one looked at', async () => {
    const c = e.client;
    await c.sku('rc-man', '2026-12-22', 10, { delivery: 'manual', priceCents: 100 });
    await c.sku('rc-tix2', '2026-12-22', 10, { delivery: 'ticket', priceCents: 100 });
    const paid = (user: string, skuId: string) => paidOrder(user, skuId, '2026-12-22');
    // In id order: a manual order (it stays paid: its merchant delivers), then two ticket orders.
    const manual = await paid('rc-m', 'rc-man');
    const failing = await paid('rc-f', 'rc-tix2');
    const other = await paid('rc-o', 'rc-tix2');
    expect(manual < failing && failing < other).toBe(true);
    await until('all paid in the read model', () => Promise.all([manual, failing, other].map((id) => e.node.stores.projection.order(id))), (rows) => rows.every((r) => r?.status === 'paid'));

    // The first ticket order's delivery throws (an ask timing out, say): reported, and the one after it is still repaired.
    const orders = e.node.orders;
    const deliverPaid = orders.deliverPaid.bind(orders);
    orders.deliverPaid = (orderId: string) => (orderId === failing ? Promise.reject(new Error('injected: ask timed out')) : deliverPaid(orderId));
    try {
      const report = await until('a finding for the other order', reconcile, (r) => about(r, other).length > 0, 10_000);
      expect(about(report, other)).toEqual([{ kind: 'paid_not_delivered', id: other, detail: expect.stringContaining('delivered now'), action: 'repaired' }]);
      expect(about(report, failing)).toEqual([{ kind: 'paid_not_delivered', id: failing, detail: expect.stringContaining('delivery failed: injected: ask timed out'), action: 'reported' }]);
    } finally {
      orders.deliverPaid = deliverPaid;
    }
    expect((await c.buyer('rc-f', 'GET', `/v1/orders/${failing}`)).body.status).toBe('paid');

    // One paid order per run: paid orders that stay paid (the manual ones, this test's and an earlier
    // test's) come first in every run that starts from the first, so only going on from where the
    // previous run stopped reaches the failed one.
    const limits = (e.node['reconciler'] as unknown as { deps: { limits: { paid_orders_per_run_max: number } } }).deps.limits;
    const max = limits.paid_orders_per_run_max;
    limits.paid_orders_per_run_max = 1;
    try {
      const paidNow = await e.node.stores.projection.ordersByStatus('paid', 1_000);
      expect(paidNow.map((o) => o.orderId)).toContain(failing);
      let repaired = false;
      for (let run = 0; run <= paidNow.length && !repaired; run++) {
        const report = await reconcile();
        expect(report.checked.paidOrders).toBe(1);
        repaired = about(report, failing).some((f) => f.action === 'repaired');
      }
      expect(repaired).toBe(true);
    } finally {
      limits.paid_orders_per_run_max = max;
    }
    expect((await c.buyer('rc-f', 'GET', `/v1/orders/${failing}`)).body.status).toBe('delivered');
  });

  it('`stampede ops reconcile` prints the report as JSON and exits 0 (1 with a wrong token)', async () => {
    const run = await cli(e.url, SECRETS.STAMPEDE_ADMIN_TOKEN);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as ReconcileReport;
    reports.push(report);
    expect(Object.keys(report).sort()).toEqual(['checked', 'findings', 'finishedAt', 'repaired', 'reported', 'startedAt']);
    expect(about(report, 'rc-del/2026-12-21').map((f) => [f.kind, f.action])).toEqual([['stock_mismatch', 'reported']]);
    expect(report.reported).toBe(report.findings.length - report.repaired);

    const refused = await cli(e.url, 'not-the-admin-token-at-all');
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: 'unauthorized' });
  });

  it('counts every finding in stampede_reconciliation_total{finding,action}', async () => {
    const tally = new Map<string, number>();
    for (const f of reports.flatMap((r) => r.findings)) tally.set(`${f.kind} ${f.action}`, (tally.get(`${f.kind} ${f.action}`) ?? 0) + 1);
    // One in the first test, one in the card-key test (its second order waits for keys: none left), two
    // in the test of a failing delivery (where one was reported first).
    expect(tally.get('paid_not_delivered repaired')).toBe(4);
    expect(tally.get('paid_not_delivered reported')).toBeGreaterThanOrEqual(1);
    expect(tally.get('stock_mismatch reported')).toBeGreaterThanOrEqual(3);
    const text = (await e.client.admin('GET', '/metrics')).body as string;
    const counted = new Map(samples(text, 'stampede_reconciliation_total').map((s) => [`${s.labels.finding} ${s.labels.action}`, s.value]));
    expect(counted).toEqual(tally);
    // Each pass that ended, by result, and when the last one did.
    const results = new Map<string, number>();
    for (const r of reports) {
      const result = r.findings.some((f) => f.kind === 'check_failed') ? 'check_failed' : r.findings.length > 0 ? 'findings' : 'clean';
      results.set(result, (results.get(result) ?? 0) + 1);
    }
    expect(results.get('clean')).toBeGreaterThanOrEqual(1);
    expect(results.get('findings')).toBeGreaterThanOrEqual(1);
    expect(new Map(samples(text, 'stampede_reconciliation_passes_total').map((s) => [s.labels.result!, s.value]))).toEqual(results);
    // Set by the last pass (the node's clock is this process's: the last report's end, to the second).
    const lastEnd = samples(text, 'stampede_reconciliation_last_pass_end_seconds')[0]!.value * 1000;
    expect(lastEnd).toBeGreaterThanOrEqual(Date.parse(reports.at(-1)!.finishedAt) - 1_000);
    expect(lastEnd).toBeLessThanOrEqual(Date.now());
  });

  it('a SKU whose delivery is busy (orders parked at its bound) leaves its other orders for later, and the other SKUs\' paid orders are still repaired in the run', async () => {
    const c = e.client;
    await c.sku('rc-busy', '2026-12-23', 10, { delivery: 'ticket', priceCents: 100 });
    await c.sku('rc-free', '2026-12-23', 10, { delivery: 'ticket', priceCents: 100 });
    const paid = (user: string, skuId: string) => paidOrder(user, skuId, '2026-12-23');
    // Four orders of the busy SKU (more than the three failures in a row that end a run), then one of another.
    const busy = [await paid('rcb-1', 'rc-busy'), await paid('rcb-2', 'rc-busy'), await paid('rcb-3', 'rc-busy'), await paid('rcb-4', 'rc-busy')];
    const other = await paid('rcb-o', 'rc-free');
    await until('all paid in the read model', () => Promise.all([...busy, other].map((id) => e.node.stores.projection.order(id))), (rows) => rows.every((r) => r?.status === 'paid'));
    const orders = e.node.orders;
    const deliverPaid = orders.deliverPaid.bind(orders);
    let busyAsks = 0;
    orders.deliverPaid = (orderId: string) => {
      if (!busy.includes(orderId)) return deliverPaid(orderId);
      busyAsks++;
      return Promise.reject(new OverloadedError('card-key delivery of rc-busy is overloaded'));
    };
    try {
      await new Promise((r) => setTimeout(r, 200)); // past the delivery grace (100 ms)
      const report = await reconcile();
      expect(about(report, other)).toEqual([expect.objectContaining({ kind: 'paid_not_delivered', action: 'repaired' })]);
      expect(report.findings.filter((f) => f.kind === 'check_failed')).toEqual([]);
      // One ask of the busy SKU per run, one finding; its other orders are not asked in that run.
      expect(busy.flatMap((id) => about(report, id))).toEqual([expect.objectContaining({ kind: 'paid_not_delivered', id: busy[0], action: 'reported', detail: expect.stringContaining('busy') })]);
      expect(busyAsks).toBe(1);
    } finally {
      orders.deliverPaid = deliverPaid;
    }
    expect((await c.buyer('rcb-o', 'GET', `/v1/orders/${other}`)).body.status).toBe('delivered');
  });
});
