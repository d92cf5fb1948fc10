// Reconciliation: compares what the inventory actors, the orders, the deliveries and the card-key
// assignments say, reports every difference, and repairs what is safe to repair:
//   - a paid order of a card_key or ticket SKU still undelivered after a grace period -> delivered
//     now (delivery is idempotent: an order that already holds keys gets the same keys);
//   - a reservation past its expiry still holding stock -> the inventory actor's expiry runs now.
// What is not safe to repair is reported only: stock that disagrees with the orders, card keys
// assigned to orders that do not account for them. Runs from `stampede ops reconcile`
// (POST /ops/reconcile) and periodically (STAMPEDE_RECONCILE_INTERVAL_MS). Every finding goes to
// the log and to metrics (stampede_reconciliation_total{finding, action}).

import { CARD_KEY_DATE, inventoryStream, type InventoryReply } from '../engine/index.ts';
import type { CardKeyStore, ProjectionStore } from '../persistence/ports.ts';
import type { Catalog } from './catalog.ts';
import type { InventoryInspection, InventoryMessage } from './inventory-actor.ts';
import type { DeliverOutcome, Result } from './order-service.ts';
import { ResumingOrderScan } from './order-scan.ts';
import { AskTimeoutError, OverloadedError, ShuttingDownError, type ActorKind } from './runtime/index.ts';
import { within } from '../persistence/bus/waits.ts';
import { StoreUnavailableError } from '../persistence/errors.ts';

export type FindingKind =
  | 'paid_not_delivered'
  | 'awaiting_card_keys'
  | 'expired_reservation_holding_stock'
  | 'stock_mismatch'
  | 'card_keys_mismatch'
  | 'card_keys_uncounted'
  | 'check_failed';

export interface Finding {
  kind: FindingKind;
  /** The order, SKU/date or SKU concerned. */
  id: string;
  detail: string;
  action: 'repaired' | 'reported';
}

export interface ReconcileReport {
  startedAt: string;
  finishedAt: string;
  checked: { paidOrders: number; liveStreams: number; streams: number; cardKeySkus: number };
  findings: Finding[];
  repaired: number;
  reported: number;
  /** Cut short by stop() (the node stopping): some checks did not run. */
  stopped?: true;
}

export interface ReconcilerDeps {
  inventory: ActorKind<InventoryMessage>;
  catalog: Catalog;
  projection: ProjectionStore;
  cardKeys: CardKeyStore;
  deliverPaid(orderId: string): Promise<Result<DeliverOutcome>>;
  /** Keys of the SKU were counted into its stock now: its orders parked for keys may be served. */
  keysCounted?(skuId: string): void;
  /** The last journal seq of a SKU/date the read model holds (the projector's checkpoint). */
  projectedSeq(stream: string): number;
  /** Resolves once the read model holds everything committed before the call (the projector's caughtUp). */
  projectionCaughtUp(): Promise<void>;
  now(): number;
  onFinding(finding: Finding): void;
  /** Each pass, once it ended (also one that stop() cut short): its report and how long it took. */
  onPass?(report: ReconcileReport, duration_ms: number): void;
  limits: ReconcileLimits;
}

export interface ReconcileLimits {
  /** A paid order younger than this is in flight, not stuck. */
  delivery_grace_ms: number;
  /** A reservation this long past its expiry means the expiry timer failed. */
  expiry_grace_ms: number;
  /** Paid orders looked at per run at most; the next run goes on after the last one. */
  paid_orders_per_run_max: number;
  /** SKU/dates compared (stock against orders) per run at most, round robin across runs. */
  streams_per_run_max: number;
}

/** Deliveries of paid orders that may fail one after the other before a run stops looking at paid orders. */
export const PAID_DELIVERIES_FAILED_IN_A_ROW_MAX = 3;

/** A store unavailable or an ask that timed out, in `error` or its causes: a dependency down, not one SKU/date's fault. */
function dependencyDown(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof StoreUnavailableError || e instanceof AskTimeoutError) return true;
  }
  return false;
}

/** Longest a check waits for the read model to catch up before it leaves the comparison for the next run. */
export const PROJECTION_WAIT_MS = 5_000;

export class Reconciler {
  private running: Promise<ReconcileReport> | undefined;
  /** stop() was called: no pass starts, the one running ends at its next order or SKU/date. */
  private stopping = false;
  /** Where the round robin over SKU/dates continues next run. */
  private streamCursor = 0;
  /** Where the scan for SKU/dates not in memory goes on next run (an index into the catalog's SKU/dates). */
  private asleepCursor = 0;
  /**
   * SKU/dates compared with no difference, with the seq the read model held then. One that is not in
   * memory and whose read model has not moved since is not woken to be compared again; any other
   * (never compared since this process started, or changed since) is.
   */
  private readonly comparedClean = new Map<string, number>();
  /** The card-key SKUs whose keys and orders differed in the previous run: a difference seen twice in a row is reported. */
  private cardKeyDifferences = new Set<string>();
  /** The last paid order looked at by the previous run (undefined: start from the first). */
  private readonly paidScan = new ResumingOrderScan();

  constructor(private readonly deps: ReconcilerDeps) {}

  /** One pass; a call while a pass runs shares it. Rejects with ShuttingDownError once stopped. */
  run(): Promise<ReconcileReport> {
    if (this.stopping) return Promise.reject(new ShuttingDownError());
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * No pass starts any more; the one running (if any) stops at its next order or SKU/date, and this
   * resolves when it has (before the node closes the stores and actors it uses).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<ReconcileReport> {
    const startedAt = this.deps.now();
    const findings: Finding[] = [];
    const found = (f: Finding): void => {
      findings.push(f);
      this.deps.onFinding(f);
    };
    const checked = { paidOrders: 0, liveStreams: 0, streams: 0, cardKeySkus: 0 };
    const started = performance.now();
    await this.guard('paid orders', found, () => this.paidOrders(found, checked));
    await this.guard('live reservations', found, () => this.liveReservations(found, checked));
    await this.guard('stock', found, () => this.stock(found, checked));
    await this.guard('card keys', found, () => this.cardKeys(found, checked));
    const repaired = findings.filter((f) => f.action === 'repaired').length;
    const report: ReconcileReport = {
      startedAt: new Date(startedAt).toISOString(),
      finishedAt: new Date(this.deps.now()).toISOString(),
      checked,
      findings,
      repaired,
      reported: findings.length - repaired,
      ...(this.stopping ? { stopped: true as const } : {}),
    };
    try {
      this.deps.onPass?.(report, performance.now() - started);
    } catch {
      // metrics and logs only: the report stands
    }
    return report;
  }

  /**
   * Waits for the read model to hold what was committed before the call, at most PROJECTION_WAIT_MS:
   * false when it did not (the database away, the projector retrying), and the comparison waits for
   * the next run — a pass, and `POST /ops/reconcile`, must not hang on an outage.
   */
  private projectionCaughtUp(): Promise<boolean> {
    return within(this.deps.projectionCaughtUp(), PROJECTION_WAIT_MS, 'the read model catching up').then(() => true, () => false);
  }

  /** A check that fails (a store down) is itself a finding; the other checks still run. */
  private async guard(what: string, found: (f: Finding) => void, check: () => Promise<void>): Promise<void> {
    if (this.stopping) return;
    try {
      await check();
    } catch (error) {
      found({ kind: 'check_failed', id: what, detail: error instanceof Error ? error.message : String(error), action: 'reported' });
    }
  }

  private async paidOrders(found: (f: Finding) => void, checked: ReconcileReport['checked']): Promise<void> {
    /**
     * Paid orders waiting for card keys, per SKU: one finding for each SKU, not one per order (a dry
     * pool of 10,000 waiting orders wrote 10,000 warnings a pass).
     */
    const awaiting = new Map<string, { orders: number; first: string }>();
    try {
      await this.paidOrdersScan(found, checked, awaiting);
    } finally {
      for (const [skuId, a] of awaiting) {
        found({ kind: 'awaiting_card_keys', id: skuId, detail: a.orders === 1
          ? `1 paid order of ${skuId} (${a.first}) waits for card keys: too few left; delivered after an upload`
          : `${a.orders} paid orders of ${skuId} (${a.first} among them) wait for card keys: too few left for the first in line; delivered after an upload`, action: 'reported' });
      }
    }
  }

  /** The paid orders of this run, each delivered if it can be; those waiting for card keys are counted into `awaiting`. */
  private async paidOrdersScan(found: (f: Finding) => void, checked: ReconcileReport['checked'], awaiting: Map<string, { orders: number; first: string }>): Promise<void> {
    const cutoff = this.deps.now() - this.deps.limits.delivery_grace_ms;
    /** SKUs whose delivery answered busy in this run (orders parked at its bound): their other orders wait for the next. */
    const busy = new Set<string>();
    // Continues where the previous run stopped (paid orders that legitimately stay paid, a manual
    // SKU's or those waiting for card keys, cannot hide the ones after them), also after a throw.
    let failedInARow = 0;
    for await (const o of this.paidScan.pass(this.deps.limits.paid_orders_per_run_max, (limit, after) => this.deps.projection.ordersByStatus('paid', limit, after))) {
      if (this.stopping) return;
      checked.paidOrders++;
      const sku = this.deps.catalog.sku(o.skuId);
      if (!sku || sku.delivery === 'manual' || o.updatedAt > cutoff || busy.has(o.skuId)) continue;
      let r: Result<DeliverOutcome>;
      try {
        r = await this.deps.deliverPaid(o.orderId);
        failedInARow = 0;
      } catch (error) {
        // A SKU whose delivery is busy (a card-key pool with orders parked at its bound) is no
        // dependency down: its orders wait, every other SKU's are still repaired in this run (three
        // in a row used to end the run, a pass going three orders further a minute).
        if (error instanceof OverloadedError) {
          busy.add(o.skuId);
          found({ kind: 'paid_not_delivered', id: o.orderId, detail: `delivery of ${o.skuId} is busy (${error.message}); its paid orders are left for a later run`, action: 'reported' });
          continue;
        }
        // One order that cannot be delivered now (an ask timing out, a busy actor) is reported and
        // the others are still repaired; many in a row mean a dependency is down: stop until the next run.
        const why = error instanceof Error ? error.message : String(error);
        found({ kind: 'paid_not_delivered', id: o.orderId, detail: `delivery failed: ${why}; tried again next run`, action: 'reported' });
        if (++failedInARow >= PAID_DELIVERIES_FAILED_IN_A_ROW_MAX) {
          throw new Error(`${failedInARow} deliveries in a row failed (the last: ${why}); the paid orders after ${o.orderId} wait for the next run`);
        }
        continue;
      }
      if (!r.ok) {
        found({ kind: 'paid_not_delivered', id: o.orderId, detail: `delivery refused: ${r.error}: ${r.message}`, action: 'reported' });
      } else if (r.value === 'delivered') {
        found({ kind: 'paid_not_delivered', id: o.orderId, detail: `paid at ${new Date(o.updatedAt).toISOString()}, delivered now`, action: 'repaired' });
      } else if (r.value === 'awaiting_card_keys') {
        const a = awaiting.get(o.skuId);
        if (a) a.orders++;
        else awaiting.set(o.skuId, { orders: 1, first: o.orderId });
      }
    }
  }

  private async liveReservations(found: (f: Finding) => void, checked: ReconcileReport['checked']): Promise<void> {
    const cutoff = this.deps.now() - this.deps.limits.expiry_grace_ms;
    for (const stream of [...this.deps.inventory.keys()]) {
      if (this.stopping) return;
      checked.liveStreams++;
      let i: InventoryInspection;
      try {
        i = await this.deps.inventory.ask<InventoryInspection>(stream, { type: 'inspect' });
      } catch (error) {
        // A store down ends the check for this run; a SKU/date too busy to answer (its mailbox full
        // in a sale) is looked at next run, and the others now.
        if (dependencyDown(error)) throw error;
        continue;
      }
      if (i.oldestExpiresAt !== null && i.oldestExpiresAt < cutoff) {
        const told = this.deps.inventory.tell(stream, { type: '$expire' });
        found({
          kind: 'expired_reservation_holding_stock',
          id: stream,
          detail: `a reservation expired at ${new Date(i.oldestExpiresAt).toISOString()} still held stock; ${told ? 'expiry run now' : 'its mailbox is full: tried again next run'}`,
          action: told ? 'repaired' : 'reported',
        });
      }
    }
  }

  /**
   * Sold stock must equal the units of paid and delivered orders, once the read model caught up.
   * SKU/dates in memory, round robin; then, within the same budget, those not in memory that were not
   * compared since they last changed (after a start: all of them, a budget per run) — a finished
   * sale whose read model lost a row must be found too, not only a live one. A passivated SKU/date
   * compared clean and unchanged since is not woken again.
   */
  private async stock(found: (f: Finding) => void, checked: ReconcileReport['checked']): Promise<void> {
    const live = new Set(this.deps.inventory.keys());
    const streams = [...live].sort().map((stream) => this.deps.catalog.streamOf(stream)).filter((r) => r !== undefined);
    const n = Math.min(streams.length, this.deps.limits.streams_per_run_max);
    for (let k = 0; k < n; k++) {
      const ref = streams[(this.streamCursor + k) % streams.length]!;
      await this.eachStream(inventoryStream(ref.skuId, ref.date), found, (stream) => this.compareStock(stream, found, checked));
    }
    this.streamCursor = streams.length === 0 ? 0 : (this.streamCursor + n) % streams.length;
    // Then those not in memory, from where the previous run stopped: woken all first (each hands its
    // events after its snapshot to the projector again), one wait for the read model, then compared.
    const budget = this.deps.limits.streams_per_run_max - n;
    const all = this.deps.catalog.allStreams();
    const asleep: string[] = [];
    let scanned = 0;
    while (scanned < all.length && asleep.length < budget) {
      const ref = all[(this.asleepCursor + scanned++) % all.length]!;
      const stream = inventoryStream(ref.skuId, ref.date);
      if (!live.has(stream) && this.comparedClean.get(stream) !== this.deps.projectedSeq(stream)) asleep.push(stream);
    }
    this.asleepCursor = all.length === 0 ? 0 : (this.asleepCursor + scanned) % all.length;
    if (asleep.length === 0 || this.stopping) return;
    const woken: string[] = [];
    for (const stream of asleep) {
      await this.eachStream(stream, found, async (s) => {
        await this.deps.inventory.ask<InventoryInspection>(s, { type: 'inspect' });
        woken.push(s);
      });
    }
    if (this.stopping || !(await this.projectionCaughtUp())) return; // the read model is stuck: compare next run
    for (const stream of woken) await this.eachStream(stream, found, (s) => this.compareStock(s, found, checked));
  }

  /**
   * Runs `check` for one SKU/date; its own failure (a SKU/date that cannot recover: a corrupt journal)
   * is a finding, and the others go on. A dependency down or stalled (a store unavailable, an ask
   * that timed out) ends the check for this run instead: every other SKU/date would wait for its own
   * timeout (a frozen database made a run last hours).
   */
  private async eachStream(stream: string, found: (f: Finding) => void, check: (stream: string) => Promise<void>): Promise<void> {
    if (this.stopping) return;
    try {
      await check(stream);
    } catch (error) {
      if (dependencyDown(error)) throw error;
      found({ kind: 'check_failed', id: stream, detail: error instanceof Error ? error.message : String(error), action: 'reported' });
    }
  }

  /** One SKU/date's stock against its orders, when its read model has caught up (else next run). */
  private async compareStock(stream: string, found: (f: Finding) => void, checked: ReconcileReport['checked']): Promise<void> {
    const i = await this.deps.inventory.ask<InventoryInspection>(stream, { type: 'inspect' });
    if (i.projectedSeq < i.journalSeq) return; // the read model is behind: compare next time
    const counts = await this.deps.projection.countByStatus(stream);
    // The read model moved while it was counted (a sale projected meanwhile): compare next time.
    const after = await this.deps.inventory.ask<InventoryInspection>(stream, { type: 'inspect' });
    if (after.projectedSeq !== i.projectedSeq) return;
    checked.streams++;
    const soldUnits = (counts.paid?.units ?? 0) + (counts.delivered?.units ?? 0);
    let clean = true;
    // Against what the journal holds: sales decided while their write is in flight are in neither.
    if (soldUnits !== i.durableSold) {
      clean = false;
      found({ kind: 'stock_mismatch', id: stream, detail: `inventory sold ${i.durableSold}, orders paid or delivered hold ${soldUnits} units`, action: 'reported' });
    }
    if (i.reserved + i.sold > i.total) {
      clean = false;
      found({ kind: 'stock_mismatch', id: stream, detail: `reserved ${i.reserved} + sold ${i.sold} exceed total ${i.total}`, action: 'reported' });
    }
    if (clean) this.comparedClean.set(stream, i.projectedSeq);
    else this.comparedClean.delete(stream);
  }

  /**
   * Keys assigned to orders must be the keys of delivered orders (plus those of paid orders being
   * delivered). The keys are counted in their table, the orders in the read model, which lags the
   * assignments; so the reads are ordered to be comparable in a live sale: the delivered units read
   * before the keys are counted are a floor (each delivery commits with its keys), and the paid and
   * delivered units read once the read model caught up with everything committed before the count
   * are a ceiling (an order only moves on from paid to delivered). A difference is reported when the
   * previous run saw one too: an assignment whose order had not reached the projector yet when it
   * caught up (a few event-loop turns after its commit) shows once, a lasting one every run.
   */
  private async cardKeys(found: (f: Finding) => void, checked: ReconcileReport['checked']): Promise<void> {
    const counted: { skuId: string; floor: number; assigned: number }[] = [];
    for (const sku of this.deps.catalog.allSkus()) {
      if (this.stopping) return;
      if (sku.delivery !== 'card_key') continue;
      checked.cardKeySkus++;
      await this.eachStream(sku.skuId, found, (skuId) => this.countStoredKeys(skuId, found));
      const before = await this.deps.projection.unitsBySkuStatus(sku.skuId);
      counted.push({ skuId: sku.skuId, floor: before.delivered ?? 0, assigned: await this.deps.cardKeys.countAssigned(sku.skuId) });
    }
    if (counted.length === 0) return;
    // One wait for all of them; the read model stuck (a database outage): compare next run.
    if (this.stopping || !(await this.projectionCaughtUp())) return;
    const seen = new Set<string>();
    for (const { skuId, floor, assigned } of counted) {
      if (this.stopping) return;
      const after = await this.deps.projection.unitsBySkuStatus(skuId);
      const ceiling = (after.delivered ?? 0) + (after.paid ?? 0);
      if (assigned >= floor && assigned <= ceiling) continue;
      seen.add(skuId);
      if (!this.cardKeyDifferences.has(skuId)) continue;
      const detail = assigned < floor
        ? `${assigned} keys assigned; delivered orders hold ${floor} units`
        : `${assigned} keys assigned; delivered and paid orders hold ${ceiling} units`;
      found({ kind: 'card_keys_mismatch', id: skuId, detail, action: 'reported' });
    }
    this.cardKeyDifferences = seen;
  }

  /**
   * Keys stored but not in the stock: an upload whose keys were stored and whose stock change then
   * failed (its SKU/date overloaded, a write failing) was answered an error, and a merchant who does
   * not retry it would leave them unsold. Counting is idempotent (the stock grows by the keys not
   * counted yet, never shrinks), so it is repaired: the SKU/date is told the number of keys stored.
   */
  private async countStoredKeys(skuId: string, found: (f: Finding) => void): Promise<void> {
    const stored = await this.deps.cardKeys.count(skuId);
    // Asked of the SKU/date only when the keys stored changed since this node last saw them counted
    // (its first pass asks each card-key SKU once): a passivated SKU/date is not woken every pass.
    if (stored === 0 || this.keysSeenCounted.get(skuId) === stored) return;
    // A first upload stores its keys before it makes the stock's date: that date may be missing (made
    // only for a SKU still sold by card keys).
    let ref = this.deps.catalog.stream(skuId, CARD_KEY_DATE);
    if (!ref) {
      if (this.deps.catalog.sku(skuId)?.delivery !== 'card_key') return;
      ref = await this.deps.catalog.ensureStream(skuId, CARD_KEY_DATE);
    }
    const stream = inventoryStream(ref.skuId, ref.date);
    let reply: InventoryReply | { outcome: 'overloaded' };
    try {
      reply = await this.deps.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(stream, { type: 'count_keys', keysTotal: stored });
    } catch (error) {
      // Busy in a sale (its mailbox full): counted by a later pass. An ask past its deadline ends the
      // check for this pass (eachStream: a database holding writes would make each SKU wait its own).
      if (error instanceof OverloadedError) return;
      throw error;
    }
    if (reply.outcome === 'overloaded') return; // too many events waiting for its write: a later pass
    if (reply.outcome !== 'total_set') throw new Error(`counting the card keys of ${skuId} answered ${reply.outcome}`);
    this.keysSeenCounted.set(skuId, stored);
    // What this count added, as the SKU/date answers it: not the total's growth since an inspect
    // before it (an upload counting its own keys, or a stock.set, landing between the two was taken
    // for a repair).
    const counted = reply.counted ?? 0;
    if (counted > 0) {
      found({ kind: 'card_keys_uncounted', id: skuId, detail: `${counted} stored keys were not in the stock; counted now (total ${reply.total})`, action: 'repaired' });
      // Orders parked for want of keys need not wait for the delivery actor's recheck.
      this.deps.keysCounted?.(skuId);
    }
  }

  /** Card keys stored per SKU when this node last saw them all counted in its stock (countStoredKeys). */
  private readonly keysSeenCounted = new Map<string, number>();
}
