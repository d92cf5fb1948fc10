// Proves the no-show sweep's stop, with its dependencies replaced by in-memory stand-ins (what it
// reads and records on real stores is proven in test/e2e/no-shows.test.ts): stop() lets the pass in
// flight end at its next order and resolves only once it has (the node closes its actors and stores
// right after), and no pass starts after it; and that orders seen before their date ended in their
// venue's zone are judged at the first pass after it.
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../../actors/catalog.ts';
import { NO_SHOW_TRIES_MAX, NoShowSweeper } from '../../actors/no-show-sweeper.ts';
import { ShuttingDownError } from '../../actors/runtime/index.ts';
import type { OrderRow, ProjectionStore } from '../../persistence/ports.ts';

const T0 = Date.parse('2026-12-05T12:00:00Z');

function deliveredTicket(n: number): OrderRow {
  return {
    orderId: `t-${String(n).padStart(3, '0')}`,
    stream: 'park/2026-12-01',
    userId: `u${n}`,
    skuId: 'park',
    date: '2026-12-01',
    qty: 1,
    amountCents: 100,
    status: 'delivered',
    createdAt: Date.parse('2026-11-20T10:00:00Z'),
    expiresAt: Date.parse('2026-11-20T10:15:00Z'),
    updatedAt: Date.parse('2026-11-20T10:01:00Z'),
    seq: n,
    paymentId: `p${n}`,
  } as OrderRow;
}

/**
 * A sweeper over `orders` as the store reads them (delivered, unmarked, dates before the easternmost
 * today), the venue's zone `timeZone` for SKU `park` (any other SKU a manual one), recording each
 * no-show's order id in `marked`.
 */
function sweeperOf(orders: OrderRow[], marked: string[], timeZone: string, now: () => number, perPass: number): NoShowSweeper {
  return new NoShowSweeper({
    projection: {
      unvisitedDelivered: async (before: string, limit: number, after?: string) => orders.filter((o) => o.date < before && !marked.includes(o.orderId) && (after === undefined || o.orderId > after)).slice(0, limit),
    } as unknown as ProjectionStore,
    catalog: { sku: (skuId: string) => ({ skuId, delivery: skuId === 'park' ? 'ticket' : 'manual', attributes: { timeZone } }) } as unknown as Catalog,
    orders: {
      recordNoShow: async (o: OrderRow) => {
        marked.push(o.orderId);
        return true;
      },
    },
    now,
    orders_per_run_max: perPass,
  });
}

describe('no-show sweeper', () => {
  it('stop() ends the pass in flight at its next order and resolves once it has; no pass starts after it', async () => {
    const orders = [1, 2, 3, 4].map(deliveredTicket);
    const recorded: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sweeper = new NoShowSweeper({
      projection: {
        unvisitedDelivered: async (_before: string, limit: number, after?: string) => orders.filter((o) => after === undefined || o.orderId > after).slice(0, limit),
      } as unknown as ProjectionStore,
      catalog: { sku: () => ({ skuId: 'park', delivery: 'ticket' }) } as unknown as Catalog,
      orders: {
        recordNoShow: async (o: OrderRow) => {
          recorded.push(o.orderId);
          if (o.orderId === 't-002') await held;
          return true;
        },
      },
      now: () => T0,
      orders_per_run_max: 100,
    });
    const pass = sweeper.run();
    while (recorded.length < 2) await new Promise((r) => setTimeout(r, 1));
    let stopped = false;
    const stopping = sweeper.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(await pass).toEqual({ noShows: 2, checked: 2, stopped: true });
    expect(recorded).toEqual(['t-001', 't-002']);
    await expect(sweeper.run()).rejects.toBeInstanceOf(ShuttingDownError);
    expect(recorded).toHaveLength(2);
  });

  it('starts the next pass with an order whose no-show could not be recorded; one failing 3 passes in a row is left for the next round', async () => {
    const orders = [1, 2, 3, 4].map(deliveredTicket);
    const asked: string[] = [];
    const marked = new Set<string>();
    let failures: Record<string, number> = { 't-002': 1 };
    const sweeper = new NoShowSweeper({
      projection: {
        // Orders still unmarked, after `after`.
        unvisitedDelivered: async (_before: string, limit: number, after?: string) => orders.filter((o) => !marked.has(o.orderId) && (after === undefined || o.orderId > after)).slice(0, limit),
      } as unknown as ProjectionStore,
      catalog: { sku: () => ({ skuId: 'park', delivery: 'ticket' }) } as unknown as Catalog,
      orders: {
        recordNoShow: async (o: OrderRow) => {
          asked.push(o.orderId);
          if ((failures[o.orderId] ?? 0) > 0) {
            failures[o.orderId]!--;
            throw new Error('injected: the buyer actor did not answer');
          }
          marked.add(o.orderId);
          return true;
        },
      },
      now: () => T0,
      orders_per_run_max: 100,
    });
    await expect(sweeper.run()).rejects.toThrow('did not answer');
    expect(await sweeper.run()).toEqual({ noShows: 3, checked: 3 });
    // The failed order first again, not skipped until the scan came round.
    expect(asked).toEqual(['t-001', 't-002', 't-002', 't-003', 't-004']);
    expect([...marked].sort()).toEqual(['t-001', 't-002', 't-003', 't-004']);

    // An order that keeps failing holds the sweep back for 3 passes at most.
    orders.push(deliveredTicket(5), deliveredTicket(6));
    failures = { 't-005': 10 };
    asked.length = 0;
    for (let pass = 0; pass < 3; pass++) await expect(sweeper.run()).rejects.toThrow('did not answer');
    expect(await sweeper.run()).toEqual({ noShows: 1, checked: 1 });
    expect(asked).toEqual(['t-005', 't-005', 't-005', 't-006']);
  });

  it("marks an order of a venue west of UTC only once its date has ended there (the SKU's timeZone)", async () => {
    const orders = [deliveredTicket(1)];
    const marked: string[] = [];
    let now = Date.parse('2026-12-02T03:00:00Z'); // 19:00 on the 1st in Los Angeles
    const sweeper = new NoShowSweeper({
      projection: {
        unvisitedDelivered: async (_before: string, limit: number, after?: string) => orders.filter((o) => !marked.includes(o.orderId) && (after === undefined || o.orderId > after)).slice(0, limit),
      } as unknown as ProjectionStore,
      catalog: { sku: () => ({ skuId: 'park', delivery: 'ticket', attributes: { timeZone: 'America/Los_Angeles' } }) } as unknown as Catalog,
      orders: {
        recordNoShow: async (o: OrderRow, at: number) => {
          marked.push(`${o.orderId}@${new Date(at).toISOString()}`);
          return true;
        },
      },
      now: () => now,
      orders_per_run_max: 100,
    });
    expect(await sweeper.run()).toEqual({ noShows: 0, checked: 1 });
    now = Date.parse('2026-12-02T09:00:00Z');
    expect(await sweeper.run()).toEqual({ noShows: 1, checked: 1 });
    expect(marked).toEqual(['t-001@2026-12-02T08:00:00.000Z']);
  });

  it("marks an order of a western venue at the first pass after its date ends there, not when the scan comes round to it again", async () => {
    // 50 delivered orders of a manual SKU (never marked) around a western ticket, 10 looked at a pass.
    const orders = Array.from({ length: 51 }, (_, n) => (n === 5 ? deliveredTicket(n) : { ...deliveredTicket(n), skuId: 'guide' }));
    const marked: string[] = [];
    let now = Date.parse('2026-12-02T03:00:00Z'); // 19:00 on the 1st in Los Angeles
    const sweeper = sweeperOf(orders, marked, 'America/Los_Angeles', () => now, 10);
    expect(await sweeper.run()).toEqual({ noShows: 0, checked: 10 }); // the ticket seen, not yet due
    expect(await sweeper.run()).toEqual({ noShows: 0, checked: 10 });
    now = Date.parse('2026-12-02T09:00:00Z'); // past midnight in Los Angeles; the scan is far from it
    expect(await sweeper.run()).toEqual({ noShows: 1, checked: 11 });
    expect(marked).toEqual([deliveredTicket(5).orderId]);
    expect(await sweeper.run()).toEqual({ noShows: 0, checked: 10 });
  });

  it(`leaves a waiting order whose no-show cannot be recorded to the scan after ${NO_SHOW_TRIES_MAX} passes, so it cannot stop every pass`, async () => {
    const orders = Array.from({ length: 31 }, (_, n) => (n === 5 ? deliveredTicket(n) : { ...deliveredTicket(n), skuId: 'guide' }));
    const marked: string[] = [];
    let now = Date.parse('2026-12-02T03:00:00Z');
    const sweeper = sweeperOf(orders, marked, 'America/Los_Angeles', () => now, 10);
    expect(await sweeper.run()).toEqual({ noShows: 0, checked: 10 });
    now = Date.parse('2026-12-02T09:00:00Z');
    const failing = sweeper as unknown as { deps: { orders: { recordNoShow: () => Promise<boolean> } } };
    failing.deps.orders.recordNoShow = () => Promise.reject(new Error('the order actor is busy'));
    for (let pass = 0; pass < NO_SHOW_TRIES_MAX; pass++) await expect(sweeper.run()).rejects.toThrow('busy');
    // Left for the scan: this pass reaches the scan (the manual SKU's orders after the cursor), not the ticket first.
    expect(await sweeper.run()).toEqual({ noShows: 0, checked: 10 });
  });

  it("marks an order of a venue east of UTC once its date has ended there, before the UTC date has", async () => {
    const orders = [deliveredTicket(1)];
    const marked: string[] = [];
    const now = Date.parse('2026-12-01T16:00:00Z'); // 01:00 on the 2nd in Tokyo, still the 1st in UTC
    const sweeper = sweeperOf(orders, marked, 'Asia/Tokyo', () => now, 100);
    expect(await sweeper.run()).toEqual({ noShows: 1, checked: 1 });
    expect(marked).toEqual(['t-001']);
  });
});
