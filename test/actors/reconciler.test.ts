// Proves the reconciler's own bookkeeping, with its dependencies replaced by in-memory stand-ins (what
// it reads and repairs on real stores is proven in test/e2e/reconciliation*.test.ts): stop() lets the
// pass in flight end at its next order and resolves only once it has (the node closes its actors and
// stores right after), no pass starts after it, and each pass that ends is handed to onPass with its
// report.
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../../actors/catalog.ts';
import type { InventoryMessage } from '../../actors/inventory-actor.ts';
import type { DeliverOutcome, Result } from '../../actors/order-service.ts';
import { Reconciler, type ReconcileReport, type ReconcilerDeps } from '../../actors/reconciler.ts';
import { ShuttingDownError, type ActorKind } from '../../actors/runtime/index.ts';
import type { CardKeyStore, OrderRow, ProjectionStore } from '../../persistence/ports.ts';

const T0 = Date.parse('2026-12-05T12:00:00Z');

function paidRow(n: number): OrderRow {
  const orderId = `o-${String(n).padStart(3, '0')}`;
  return {
    orderId,
    stream: 'tickets/2026-12-24',
    userId: `u${n}`,
    skuId: 'tickets',
    date: '2026-12-24',
    qty: 1,
    amountCents: 100,
    status: 'paid',
    createdAt: T0 - 600_000,
    expiresAt: T0 - 300_000,
    updatedAt: T0 - 600_000,
    seq: n,
    paymentId: `p${n}`,
  } as OrderRow;
}

function reconcilerOver(paid: OrderRow[], deliverPaid: (orderId: string) => Promise<Result<DeliverOutcome>>, passes: { report: ReconcileReport; ms: number }[]) {
  const projection = {
    ordersByStatus: async (_status: string, limit: number, after?: string) => paid.filter((o) => after === undefined || o.orderId > after).slice(0, limit),
    unitsBySkuStatus: async () => ({}),
    countByStatus: async () => ({}),
  } as unknown as ProjectionStore;
  const catalog = {
    sku: () => ({ skuId: 'tickets', delivery: 'ticket' }),
    allSkus: () => [],
    allStreams: () => [],
    streamOf: () => undefined,
  } as unknown as Catalog;
  const inventory = { keys: () => [] } as unknown as ActorKind<InventoryMessage>;
  const deps: ReconcilerDeps = {
    inventory,
    catalog,
    projection,
    cardKeys: {} as CardKeyStore,
    deliverPaid,
    projectedSeq: () => 0,
    projectionCaughtUp: async () => undefined,
    now: () => T0,
    onFinding: () => undefined,
    onPass: (report, ms) => passes.push({ report, ms }),
    limits: { delivery_grace_ms: 30_000, expiry_grace_ms: 60_000, paid_orders_per_run_max: 100, streams_per_run_max: 10 },
  };
  return new Reconciler(deps);
}

describe('reconciler', () => {
  it('stop() ends the pass in flight at its next order and resolves once it has; no pass starts after it', async () => {
    const paid = [1, 2, 3, 4, 5].map(paidRow);
    const asked: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const passes: { report: ReconcileReport; ms: number }[] = [];
    const reconciler = reconcilerOver(
      paid,
      async (orderId) => {
        asked.push(orderId);
        if (orderId === 'o-002') await held;
        return { ok: true, value: 'delivered' };
      },
      passes,
    );
    const pass = reconciler.run();
    while (asked.length < 2) await new Promise((r) => setTimeout(r, 1));
    let stopped = false;
    const stopping = reconciler.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    // The delivery in flight is still running: stop() waits for it.
    expect(stopped).toBe(false);
    release();
    await stopping;
    const report = await pass;
    // It repaired the two it had started and looked at nothing after them.
    expect(asked).toEqual(['o-001', 'o-002']);
    expect(report.findings.map((f) => [f.id, f.action])).toEqual([
      ['o-001', 'repaired'],
      ['o-002', 'repaired'],
    ]);
    expect(passes).toHaveLength(1);
    expect(passes[0]!.report).toBe(report);
    // Marked as cut short: its checks after the paid orders did not run.
    expect(report.stopped).toBe(true);
    await expect(reconciler.run()).rejects.toBeInstanceOf(ShuttingDownError);
    expect(asked).toHaveLength(2);
  });

  it('hands every pass that ends to onPass with its report; a throwing onPass does not fail the pass', async () => {
    const passes: { report: ReconcileReport; ms: number }[] = [];
    const reconciler = reconcilerOver([paidRow(7)], async () => ({ ok: true, value: 'already_delivered' }), passes);
    const first = await reconciler.run();
    expect(first.checked.paidOrders).toBe(1);
    expect(passes).toHaveLength(1);
    expect(passes[0]!.report).toBe(first);
    expect(first).not.toHaveProperty('stopped');

    const throwing = new Reconciler({
      ...(reconciler as unknown as { deps: ReconcilerDeps }).deps,
      onPass: () => {
        throw new Error('a metric broke');
      },
    });
    expect((await throwing.run()).checked.paidOrders).toBe(1);
    await reconciler.stop();
    await throwing.stop();
  });
});
