// No-shows (API.md "Delivery"): a delivered ticket order whose date has passed unredeemed counts as a
// no-show for its buyer. This job pages through delivered orders with no visit recorded whose date
// has ended (by the injected clock, at midnight in the venue's time zone: the SKU's `timeZone`, else
// UTC), records the no-show with the buyer's limit actor
// first (idempotent per order), then marks the order — so a crash between the two is repaired by the
// next pass, which finds the order still unmarked. A pass looks at `orders_per_run_max` orders at most
// and the next goes on after them (delivered orders of other SKU kinds are never marked, so passes
// starting from the first could never get past them). Runs with reconciliation and on demand
// (POST /ops/no-shows). stop() (the node stopping) ends a pass at its next order and waits for it.

import { TIME_ZONE_ATTRIBUTE, visitDeadline } from '../engine/index.ts';
import type { OrderRow, ProjectionStore } from '../persistence/ports.ts';
import type { Catalog } from './catalog.ts';
import type { OrderService } from './order-service.ts';
import { ResumingOrderScan } from './order-scan.ts';
import { ShuttingDownError } from './runtime/index.ts';

export interface NoShowSweepReport {
  /** Orders newly recorded as no-shows. */
  noShows: number;
  /** Delivered orders looked at. */
  checked: number;
  /** Cut short by stop() (the node stopping): the orders after the last one looked at wait for the next pass. */
  stopped?: true;
}

export interface NoShowSweeperDeps {
  projection: ProjectionStore;
  catalog: Catalog;
  orders: Pick<OrderService, 'recordNoShow'>;
  now: () => number;
  /** Orders looked at per pass at most. */
  orders_per_run_max: number;
}

/** UTC+14 (Pacific/Kiritimati): a date ends there first. */
const EASTERNMOST_OFFSET_MS = 14 * 3_600_000;

/** Passes in a row that may start with one order whose no-show could not be recorded, before it is left for the scan's next round. */
export const NO_SHOW_TRIES_MAX = 3;
/**
 * Orders seen before their date had ended in their venue's zone (read by the easternmost date, at most
 * ~26 hours early) kept to be judged by the first pass after their deadline, at most: without it such an
 * order waited for the scan to come round to it again (with many delivered orders, hours), and its buyer
 * could order meanwhile as if no no-show counted. Past it, they wait for the scan as before.
 */
export const NO_SHOW_WAITING_MAX = 10_000;

export class NoShowSweeper {
  private running: Promise<NoShowSweepReport> | undefined;
  private readonly scan = new ResumingOrderScan();
  /** The order whose marking failed last, and in how many passes in a row. */
  private failing: { orderId: string; tries: number } | undefined;
  private stopping = false;
  /** Orders seen before their deadline, by id, to be judged once it has passed (NO_SHOW_WAITING_MAX). */
  private readonly waiting = new Map<string, { order: OrderRow; at: number; tries: number }>();

  constructor(private readonly deps: NoShowSweeperDeps) {}

  /** One pass; a call while a pass runs shares it. Rejects with ShuttingDownError once stopped. */
  run(): Promise<NoShowSweepReport> {
    if (this.stopping) return Promise.reject(new ShuttingDownError());
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** No pass starts any more; the one running ends at its next order, and this resolves when it has. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<NoShowSweepReport> {
    // An order of date D is a no-show once D has ended in its venue's time zone: read those of dates
    // before today in the easternmost zone (UTC+14, where a date ends first), each then judged by its
    // own zone's midnight (UTC when its SKU names none). By the UTC date, an eastern venue's redeems were
    // refused hours before its buyers' no-shows were counted.
    const today = new Date(this.deps.now() + EASTERNMOST_OFFSET_MS).toISOString().slice(0, 10);
    const report: NoShowSweepReport = { noShows: 0, checked: 0 };
    // First the orders seen before their date had ended and due now (a failure leaves one waiting);
    // the scan below passes over them (its read model may not show their mark yet).
    const judged = new Set<string>();
    for (const [orderId, w] of this.waiting) {
      if (this.stopping) {
        report.stopped = true;
        return report;
      }
      if (this.deps.now() < w.at) continue;
      this.waiting.delete(orderId);
      judged.add(orderId);
      report.checked++;
      try {
        if (await this.deps.orders.recordNoShow(w.order, w.at)) report.noShows++;
      } catch (error) {
        // Tried again first by the next pass; one failing NO_SHOW_TRIES_MAX passes in a row is left for
        // the scan's next round, so that it cannot keep every pass from reaching the scan.
        if (w.tries + 1 < NO_SHOW_TRIES_MAX) this.waiting.set(orderId, { ...w, tries: w.tries + 1 });
        throw error;
      }
    }
    // Goes on where the previous pass stopped: delivered orders that are never marked (a manual or
    // card-key SKU's with a date) cannot fill every pass's budget and hide the ticket orders after them.
    for await (const o of this.scan.pass(this.deps.orders_per_run_max, (limit, after) => this.deps.projection.unvisitedDelivered(today, limit, after))) {
      if (this.stopping) {
        report.stopped = true;
        break;
      }
      if (judged.has(o.orderId)) continue;
      report.checked++;
      const sku = this.deps.catalog.sku(o.skuId);
      if (!sku || sku.delivery !== 'ticket') continue;
      // The date ends at midnight in the venue's time zone (the SKU's attribute), else UTC: a venue east
      // of UTC is swept by the UTC date, after its own midnight; one west of it only once its own came.
      const at = visitDeadline(o.date, sku.attributes?.[TIME_ZONE_ATTRIBUTE]);
      if (this.deps.now() < at) {
        if (o.createdAt < at && (this.waiting.has(o.orderId) || this.waiting.size < NO_SHOW_WAITING_MAX)) this.waiting.set(o.orderId, { order: o, at, tries: 0 });
        continue;
      }
      this.waiting.delete(o.orderId);
      // Bought once its date was over (the contract does not forbid selling it): never a no-show. One
      // delivered after it (paid late) is left to its actor's history (engine/order.ts deliveredBefore):
      // the row's last change may be a later stray callback's, not its delivery.
      if (o.createdAt >= at) continue;
      try {
        if (await this.deps.orders.recordNoShow(o, at)) report.noShows++;
      } catch (error) {
        // Not marked (an ask timing out, an actor busy): the next pass starts with this order, instead
        // of after it (which left it unmarked until the scan came round again). One that keeps failing
        // is left for that round after NO_SHOW_TRIES_MAX passes, so that it cannot hold every other back.
        const tries = this.failing?.orderId === o.orderId ? this.failing.tries + 1 : 1;
        if (tries >= NO_SHOW_TRIES_MAX) {
          this.failing = undefined;
          throw error;
        }
        this.failing = { orderId: o.orderId, tries };
        this.scan.again();
        throw error;
      }
      if (this.failing?.orderId === o.orderId) this.failing = undefined;
    }
    return report;
  }
}
