// One actor per `card_key` SKU (key = skuId): the only writer of that SKU's pool of card keys. It
// hands out keys in id order from an in-memory window of unassigned key ids, records the assignments
// decided in one tick with one CardKeyStore.assign (one transaction; the store refuses a key that is
// assigned already), and replies only once that write has committed. While a write is in flight the
// next asks gather in the runtime's mailbox and become the next tick's single write (receive is async,
// and the runtime hands over the next batch only when it returns). See docs/orders-and-delivery.md.
//
// - An order is given one key set, ever: a repeated ask (a redelivered order.paid, a crash between the
//   assignment and the order's `delivered`) gets the keys it has, from memory or from the store
//   (`assignedTo`), before anything new is picked. The store checks it too (card-key-store.ts).
// - When the pool cannot cover an order, it is parked, FIFO (a later order never overtakes it, even
//   if it asks for fewer keys), and answered `awaiting`. The first park of an episode journals
//   `card_keys_exhausted` to `@d/<skuId>` (published as `sku.card_keys_exhausted`); the episode ends
//   when the parked orders have been served, which journals `card_keys_restocked` (not published), so
//   an incarnation activated later knows whether the merchant was told already.
// - `keys_added` (and a timer while orders are parked, in case a tell was dropped or the upload went
//   through another node) reloads the window and serves the parked orders in order; each one served
//   is announced with `onAssigned` once its keys are durable.
// - Parked orders are not persisted by this actor. After a restart of the process, the engine
//   re-drives paid-but-undelivered orders in paid order, which parks them again. After a failed write
//   this incarnation restarts (to reload the window from the store) and hands the orders it had
//   parked to `onParkedDropped`, for the engine to re-drive.
// - An ask may bring its order's `delivered` record, made from the keys picked for it: it is written
//   in the assignment's transaction (one commit for both instead of two in a row on the paid order's
//   way to delivered), and the reply says `recorded`. If one such record is refused for a taken seq
//   (a stale order actor), the tick's assignments are written again without the records: the replies
//   do not say `recorded`, and each order writes its own (see store()).
// - A failed write fails the asks waiting on it with UnavailableError. A write that failed may still
//   have committed (a timeout): the next ask for such an order finds its keys with `assignedTo`, and a
//   key it took cannot be given again because the store refuses it.

import { isoTime } from '../engine/index.ts';
import { RecentMap } from '../engine/recent-map.ts';
import { JournalConflictError } from '../persistence/errors.ts';
import type { CardKeyAssignment, CardKeyStore, JournalRecord, JournalStore } from '../persistence/ports.ts';
import { UnavailableError } from './errors.ts';
import type { GroupCommitter } from './group-commit.ts';
import type { ProjectedEvent } from './inventory-projection.ts';
import { eventIdOf, eventSubject } from './order-events.ts';
import type { Projector } from './projector.ts';
import type { ActorContext, Behavior, Envelope } from './runtime/index.ts';

export const DELIVERY_STREAM_PREFIX = '@d/';

export function deliveryStream(skuId: string): string {
  return `${DELIVERY_STREAM_PREFIX}${skuId}`;
}

export type DeliveryMessage =
  /**
   * Keys for a paid order of this SKU. `fresh`: no key can have been assigned to the order yet (its
   * order actor paid it and has not asked before), so the store is not asked which keys it holds.
   */
  | {
      type: 'assign';
      orderId: string;
      qty: number;
      fresh?: boolean;
      /**
       * The order's `delivered` journal record, given the keys picked for it: written in the same
       * transaction as the assignment (the order is delivered with its keys or not at all, in one
       * commit), and the reply says `recorded` — unless a record of the tick was refused for a taken
       * seq, when the keys are written without the records (see store()). Only for keys picked by this ask, not for keys the
       * order holds already (a repeated ask), nor for an order served later from the parked queue.
       */
      record?: (keyIds: number[]) => JournalRecord | undefined;
    }
  /** Keys were uploaded (tell): reload the window and serve the parked orders. */
  | { type: 'keys_added' }
  /** Ops: answered with a DeliveryInspection. */
  | { type: 'inspect' }
  /** The projector wrote this stream's events up to `seq`. */
  | { type: '$projected'; seq: number }
  /** Timer while orders are parked: look for keys that arrived without a `keys_added`. */
  | { type: '$recheck' };

export type DeliveryReply =
  /** The order's keys (the same ones on every ask), durable; `recorded`: with the ask's `record`. */
  | { outcome: 'assigned'; keyIds: number[]; recorded?: true }
  /** The pool cannot cover the order now: it is parked and will be served when keys arrive. */
  | { outcome: 'awaiting' }
  /** Too many orders parked already (parked_orders_max): try again later. */
  | { outcome: 'overloaded' };

/** What `inspect` answers (ops, tests). */
export interface DeliveryInspection {
  skuId: string;
  /** Unassigned keys held in the window. */
  windowKeys: number;
  /** Orders waiting for keys, in the order they will be served. */
  parked: { orderId: string; qty: number }[];
  /** Assignments remembered for repeated asks. */
  assignedInMemory: number;
  /** An exhaustion episode is open (its event was journaled). */
  exhausted: boolean;
}

/** The events of a delivery stream `@d/<skuId>` (pool events only; assignments live in card_keys). */
/** How long after an activation kept an episode open an order served with nobody waiting may end it. */
export const EPISODE_KEPT_OPEN_GRACE_MS = 60_000;

export type DeliveryEvent =
  /**
   * `keysLeft`: unassigned keys when the episode began (a head order may need more than are left);
   * absent in events written before session 20.
   */
  | { type: 'card_keys_exhausted'; at: number; awaitingOrders: number; keysLeft?: number }
  | { type: 'card_keys_restocked'; at: number };

export interface DeliveryLimits {
  /** Unassigned key ids held in memory at most; also the most keys one write assigns. */
  window_keys_max: number;
  /** After a write, the window is topped up from the store when it holds fewer keys than this. */
  window_refill_below_keys: number;
  /** Orders parked awaiting keys at most; past it an ask is answered `overloaded`. */
  parked_orders_max: number;
  /** Recent assignments kept for repeated asks (at most this many; the half made last always); older ones are read back from the store. */
  assigned_in_memory_max: number;
  /** Keys one order may ask for (the API's qty bound). */
  order_keys_max: number;
  /** While orders are parked, the pool is looked at again this often even without `keys_added`. */
  parked_recheck_ms: number;
}

export const delivery_limits_default: DeliveryLimits = {
  window_keys_max: 1_000,
  window_refill_below_keys: 500,
  parked_orders_max: 10_000,
  assigned_in_memory_max: 10_000,
  order_keys_max: 100,
  parked_recheck_ms: 5_000,
};

/** The longest order id the store can hold (card_keys.order_id). */
const order_id_length_max = 64;
/**
 * The most a window may hold: a reload reads up to twice the window (the window plus the keys picked
 * in the tick), which must stay within one `unassigned` read (10,000 on SQL).
 */
export const window_keys_ceiling = 5_000;

function checkLimits(l: DeliveryLimits): DeliveryLimits {
  for (const [name, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`delivery limits: ${name} must be an integer >= 1, got ${v}`);
  }
  if (l.window_keys_max > window_keys_ceiling) throw new RangeError(`delivery limits: window_keys_max is at most ${window_keys_ceiling}`);
  if (l.window_keys_max < l.order_keys_max) throw new RangeError('delivery limits: the window must hold one order of order_keys_max keys');
  return l;
}

export interface DeliveryDeps {
  cardKeys: CardKeyStore;
  journal: JournalStore;
  committer: GroupCommitter;
  projector: Projector;
  /** The SKU's merchant (names the subject of its events). */
  merchantOf: (skuId: string) => string;
  now: () => number;
  /**
   * A parked order got its keys (durable): the engine marks it delivered. Called once per serving,
   * but the same order may be announced again by a later incarnation; the callee must be idempotent.
   */
  onAssigned: (orderId: string, keyIds: number[]) => void;
  /** Delivered records refused for a taken seq (stale order actors): the assignments were written without them. */
  onRidersRefused?: (records: readonly JournalRecord[]) => void;
  /** Orders this incarnation had parked when it restarted after a failed write: re-drive them (after a backoff). */
  onParkedDropped?: (orderIds: string[]) => void;
  limits?: DeliveryLimits;
}

interface Parked {
  orderId: string;
  qty: number;
}

interface PendingAssignment {
  keyIds: number[];
  /** Asks answered with these keys once they are durable. */
  waiters: Envelope<DeliveryMessage>[];
  /** Served from the parked queue: announced with onAssigned once durable. */
  fromParked: boolean;
  /** The first waiter's journal record (its `record`), written with the assignment. */
  journal?: JournalRecord | undefined;
}

/** What one write carries: the assignments and journal events decided since the previous write. */
class Tick {
  readonly assignments = new Map<string, PendingAssignment>();
  /** Keys picked by `assignments` (still unassigned in the store until the write commits). */
  readonly taken = new Set<number>();
  /** Episode changes, in order (rare: one pair per episode); all are journaled. */
  readonly events: DeliveryEvent[] = [];
  /** `awaiting` answers: sent once this tick's journal event (if any) is durable. */
  readonly awaiting: Envelope<DeliveryMessage>[] = [];
  readonly inspects: Envelope<DeliveryMessage>[] = [];

  get empty(): boolean {
    return this.assignments.size === 0 && this.events.length === 0;
  }
}

/** A write of this tick failed: its asks were failed, the incarnation must restart. */
class WriteFailed extends Error {}

export class DeliveryActor implements Behavior<DeliveryMessage> {
  private readonly stream: string;
  private readonly limits: DeliveryLimits;
  private ready = false;
  private busy = false;
  /** Last seq of this stream that is durable. */
  private seq = 0;
  private projectedSeq = 0;
  private exhausted = false;
  /** When an activation kept an open episode (see assign); undefined otherwise. */
  private keptOpenAt: number | undefined;
  /** Unassigned key ids, ascending; `window[windowHead]` is the next to give. */
  private window: number[] = [];
  private windowHead = 0;
  /** The highest id ever loaded into the window: refills continue after it. */
  private cursor = 0;
  /** The last read after `cursor` found nothing more (until keys are added). */
  private cursorDrained = false;
  /** Durable assignments remembered, the most recent (bounded). */
  private readonly known: RecentMap<string, number[]>;
  private parked: Parked[] = [];
  private parkedHead = 0;
  private readonly parkedIds = new Set<string>();
  private cancelRecheck: (() => void) | undefined;
  private tick = new Tick();
  /** A background top-up of the window (after a write), if one runs: see prefetched(). */
  private prefetch: Promise<void> | undefined;

  constructor(
    private readonly skuId: string,
    private readonly deps: DeliveryDeps,
  ) {
    this.stream = deliveryStream(skuId);
    this.limits = checkLimits(deps.limits ?? delivery_limits_default);
    this.known = new RecentMap(this.limits.assigned_in_memory_max);
  }

  canPassivate(): boolean {
    return !this.busy && this.parkedCount === 0 && this.tick.empty;
  }

  async receive(batch: Envelope<DeliveryMessage>[], ctx: ActorContext<DeliveryMessage>): Promise<void> {
    this.busy = true;
    try {
      if (!this.ready) {
        try {
          await this.activate();
        } catch (error) {
          const failure = new UnavailableError(`recovery of ${this.stream} failed`, { cause: error });
          for (const env of batch) ctx.fail(env, failure);
          ctx.restart();
          return;
        }
      }
      await this.handleBatch(batch, ctx);
    } catch (error) {
      if (!(error instanceof WriteFailed)) throw error;
      // Asks of this batch not answered yet (already answered ones are no-ops) fail the same way.
      const failure = new UnavailableError(`card-key delivery of ${this.skuId} failed`, { cause: error.cause });
      for (const env of batch) ctx.fail(env, failure);
      const dropped = this.parkedOrders().map((p) => p.orderId);
      ctx.restart();
      if (dropped.length > 0) this.deps.onParkedDropped?.(dropped);
    } finally {
      this.busy = false;
    }
  }

  private async handleBatch(batch: Envelope<DeliveryMessage>[], ctx: ActorContext<DeliveryMessage>): Promise<void> {
    const lookedUp = await this.lookUp(batch);
    for (const env of batch) {
      const msg = env.msg;
      switch (msg.type) {
        case 'assign':
          await this.assign(env, msg, lookedUp, ctx);
          break;
        case 'keys_added':
        case '$recheck':
          if (msg.type === '$recheck') this.cancelRecheck = undefined;
          await this.restock(ctx);
          break;
        case 'inspect':
          this.tick.inspects.push(env);
          break;
        case '$projected':
          this.projectedSeq = Math.max(this.projectedSeq, msg.seq);
          break;
      }
      if (this.tick.taken.size >= this.limits.window_keys_max) await this.flush(ctx);
    }
    await this.flush(ctx);
    this.armRecheck(ctx);
  }

  // ---- activation ----------------------------------------------------------------------------

  /** Reads the stream (its last seq and whether an episode is open) and loads the window. */
  private async activate(): Promise<void> {
    const records = await this.deps.journal.readAfter(this.stream, 0);
    this.projectedSeq = this.deps.projector.checkpoint(this.stream);
    let seq = 0;
    let last: DeliveryEvent | undefined;
    // Events the read model may lack (a crash right after their write) go to the projector again.
    const reprojected: ProjectedEvent[] = [];
    for (const record of records) {
      if (record.seq !== seq + 1) throw new UnavailableError(`journal of ${this.stream} is not contiguous at seq ${seq}`);
      for (const raw of record.events) {
        seq++;
        last = raw as DeliveryEvent;
        if (seq > this.projectedSeq) reprojected.push(this.project(last, seq));
      }
    }
    if (seq > this.projectedSeq) this.deps.projector.enqueue(this.stream, reprojected, seq, 0);
    this.seq = seq;
    this.exhausted = last?.type === 'card_keys_exhausted';
    await this.reload();
    // Keys arrived while no incarnation was looking: the open episode is over. Not merely keys left: a
    // head order needing more than were left opens an episode with some in the window, and ending it
    // at every restart published a second exhaustion for the same shortage when the order parked again.
    const keysLeft = last?.type === 'card_keys_exhausted' ? (last.keysLeft ?? 0) : 0;
    if (this.exhausted && this.windowSize > keysLeft) this.endEpisode();
    if (this.exhausted) this.keptOpenAt = this.deps.now();
    this.ready = true;
  }

  // ---- assign --------------------------------------------------------------------------------

  /**
   * The keys of the orders of this batch that already have some: those this incarnation remembers (as
   * of now: a write later in the batch may let an entry go from memory before its ask is handled, and
   * the ask must still find them), and those the store holds for the others, in one `assignedToMany`
   * (the store splits it into statements). A failed read fails the asks of those orders.
   */
  private async lookUp(batch: Envelope<DeliveryMessage>[]): Promise<Map<string, number[] | Error>> {
    const found = new Map<string, number[] | Error>();
    const ids = new Set<string>();
    for (const env of batch) {
      const msg = env.msg;
      if (msg.type !== 'assign' || msg.fresh === true || !validAssign(msg, this.limits)) continue;
      const known = this.known.peek(msg.orderId);
      if (known) found.set(msg.orderId, known);
      else if (!this.parkedIds.has(msg.orderId)) ids.add(msg.orderId);
    }
    if (ids.size === 0) return found;
    try {
      for (const [id, keyIds] of await this.deps.cardKeys.assignedToMany([...ids])) found.set(id, keyIds);
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const id of ids) found.set(id, failure);
    }
    return found;
  }

  private async assign(
    env: Envelope<DeliveryMessage>,
    msg: Extract<DeliveryMessage, { type: 'assign' }>,
    lookedUp: Map<string, number[] | Error>,
    ctx: ActorContext<DeliveryMessage>,
  ): Promise<void> {
    if (!validAssign(msg, this.limits)) {
      ctx.fail(env, new RangeError(`assign: order id must be 1..${order_id_length_max} characters and qty 1..${this.limits.order_keys_max}`));
      return;
    }
    const { orderId, qty } = msg;
    const pending = this.tick.assignments.get(orderId);
    if (pending) {
      pending.waiters.push(env);
      return;
    }
    const known = this.known.get(orderId);
    if (known) {
      ctx.reply(env, assigned(known));
      return;
    }
    if (this.parkedIds.has(orderId)) {
      this.tick.awaiting.push(env);
      return;
    }
    const found = lookedUp.get(orderId);
    if (found instanceof Error) {
      ctx.fail(env, new UnavailableError(`card keys of order ${orderId} could not be read`, { cause: found }));
      return;
    }
    if (found && found.length > 0) {
      this.remember(orderId, found);
      ctx.reply(env, assigned(found));
      return;
    }
    // FIFO: while orders wait, a new one waits behind them.
    if (this.parkedCount === 0) {
      let covered: boolean;
      try {
        covered = await this.cover(qty);
      } catch (error) {
        ctx.fail(env, new UnavailableError(`card keys of ${this.skuId} could not be read`, { cause: error }));
        return;
      }
      if (covered) {
        // Served with nobody waiting while an episode is open (it stayed open across a restart, its
        // parked orders gone from memory): the shortage that opened it has nothing left waiting, so it
        // ends — kept open, the next real shortage would park without telling the merchant.
        // Not at once after the activation that kept it open: the parked orders it lost come back
        // meanwhile (the start's re-drive, their order actors asking again) in another order than
        // they parked in, and a smaller one served first would end a shortage that still stands.
        if (this.exhausted && (this.keptOpenAt === undefined || this.deps.now() - this.keptOpenAt >= EPISODE_KEPT_OPEN_GRACE_MS)) this.endEpisode();
        const keyIds = this.take(qty);
        // An ask already answered (its deadline passed: the order actor failed that command and may
        // be reloading) brings no record: one made from its stale seq would fail the whole write.
        this.tick.assignments.set(orderId, { keyIds, waiters: [env], fromParked: false, journal: ctx.answered(env) ? undefined : riding(msg, keyIds) });
        return;
      }
    }
    if (this.parkedCount >= this.limits.parked_orders_max) {
      ctx.reply(env, { outcome: 'overloaded' } satisfies DeliveryReply);
      return;
    }
    this.parked.push({ orderId, qty });
    this.parkedIds.add(orderId);
    this.tick.awaiting.push(env);
    if (!this.exhausted) {
      this.exhausted = true;
      this.tick.events.push({ type: 'card_keys_exhausted', at: this.deps.now(), awaitingOrders: this.parkedCount, keysLeft: this.windowSize });
    }
  }

  /** True when the window holds `qty` keys, reading more from the store if needed (never when exhausted). */
  private async cover(qty: number): Promise<boolean> {
    if (this.windowSize >= qty) return true;
    await this.prefetched();
    if (this.windowSize >= qty) return true;
    if (this.exhausted) return false;
    if (!this.cursorDrained) {
      await this.refill();
      if (this.windowSize >= qty) return true;
    }
    // Keys committed out of id order (concurrent uploads on MariaDB) may sit below the cursor.
    await this.reload();
    return this.windowSize >= qty;
  }

  private take(qty: number): number[] {
    const keyIds = this.window.slice(this.windowHead, this.windowHead + qty);
    this.windowHead += qty;
    for (const id of keyIds) this.tick.taken.add(id);
    if (this.windowHead > 1_024 && this.windowHead * 2 > this.window.length) {
      this.window = this.window.slice(this.windowHead);
      this.windowHead = 0;
    }
    return keyIds;
  }

  // ---- keys arriving -------------------------------------------------------------------------

  /** Reloads the window and serves the parked orders in order, as far as the keys go. */
  private async restock(ctx: ActorContext<DeliveryMessage>): Promise<void> {
    try {
      await this.prefetched();
      await this.reload();
    } catch {
      return; // a read failed: nothing changed; the recheck timer or the next upload tries again
    }
    if (this.windowSize === 0) return;
    while (this.parkedCount > 0) {
      const head = this.parked[this.parkedHead]!;
      // No top-up runs here: none starts while orders are parked (the pool is exhausted then), and
      // the one before was waited for above.
      if (this.windowSize < head.qty && !this.cursorDrained) {
        try {
          await this.refill();
        } catch {
          break;
        }
      }
      if (this.windowSize < head.qty) break;
      this.parkedHead++;
      this.parkedIds.delete(head.orderId);
      this.tick.assignments.set(head.orderId, { keyIds: this.take(head.qty), waiters: [], fromParked: true });
      if (this.tick.taken.size >= this.limits.window_keys_max) await this.flush(ctx);
    }
    this.compactParked();
    if (this.parkedCount === 0 && this.exhausted) this.endEpisode();
  }

  private endEpisode(): void {
    this.exhausted = false;
    this.keptOpenAt = undefined;
    this.tick.events.push({ type: 'card_keys_restocked', at: this.deps.now() });
  }

  // ---- the window ----------------------------------------------------------------------------

  private get windowSize(): number {
    return this.window.length - this.windowHead;
  }

  /** Tops the window up with keys after the cursor. */
  private async refill(): Promise<void> {
    const room = this.limits.window_keys_max - this.windowSize;
    if (room <= 0) return;
    const ids = await this.deps.cardKeys.unassigned(this.skuId, this.cursor, room);
    this.cursorDrained = ids.length < room;
    if (ids.length === 0) return;
    const taken = this.tick.taken;
    this.window = this.window.slice(this.windowHead).concat(taken.size === 0 ? ids : ids.filter((id) => !taken.has(id)));
    this.windowHead = 0;
    this.cursor = ids[ids.length - 1]!;
  }

  /**
   * Loads the window afresh from the lowest unassigned id. This actor is the only writer of the pool,
   * so the store's unassigned keys are exactly the window's plus the ones not loaded yet, less the
   * ones picked in this tick (unassigned in the store until its write commits).
   */
  private async reload(): Promise<void> {
    const taken = this.tick.taken;
    const limit = this.limits.window_keys_max + taken.size;
    const ids = await this.deps.cardKeys.unassigned(this.skuId, 0, limit);
    const unpicked = ids.filter((id) => !taken.has(id));
    const fresh = unpicked.slice(0, this.limits.window_keys_max);
    this.window = fresh;
    this.windowHead = 0;
    // Cut short by the window's bound: continue after its last key; else everything read was seen.
    this.cursor = (fresh.length < unpicked.length ? fresh[fresh.length - 1] : ids[ids.length - 1]) ?? 0;
    this.cursorDrained = ids.length < limit;
  }

  // ---- writing -------------------------------------------------------------------------------

  /**
   * Makes this tick durable: the assignments in one CardKeyStore.assign (with the `delivered` records
   * of the orders whose asks brought one), the journal event (if any) through the group committer,
   * both at once; then answers. Throws WriteFailed (after failing the
   * asks that waited on the failed part) when either write failed.
   */
  private async flush(ctx: ActorContext<DeliveryMessage>): Promise<void> {
    const tick = this.tick;
    this.tick = new Tick();
    const now = this.deps.now();
    const assignments: CardKeyAssignment[] = [...tick.assignments].map(([orderId, a]) => ({ skuId: this.skuId, orderId, keyIds: a.keyIds }));
    const events = tick.events;
    // The merchant hears how many orders wait as of this write (more may have parked in the tick).
    const last = events[events.length - 1];
    if (last?.type === 'card_keys_exhausted') last.awaitingOrders = this.parkedCount;
    const record: JournalRecord | undefined =
      events.length > 0 ? { stream: this.stream, seq: this.seq + 1, lastSeq: this.seq + events.length, at: now, events } : undefined;

    const [stored, journaled] = await Promise.allSettled([
      assignments.length > 0 ? this.store(tick, assignments, now) : Promise.resolve(),
      record ? this.deps.committer.commit(record) : Promise.resolve(),
    ]);

    if (stored.status === 'fulfilled') {
      for (const [orderId, a] of tick.assignments) {
        this.remember(orderId, a.keyIds);
        a.waiters.forEach((env, i) => ctx.reply(env, assigned(a.keyIds, i === 0 && a.journal !== undefined)));
        if (a.fromParked) this.announce(orderId, a.keyIds);
      }
    } else {
      const failure = new UnavailableError(`card-key assignment of ${this.skuId} failed`, { cause: stored.reason });
      for (const a of tick.assignments.values()) for (const env of a.waiters) ctx.fail(env, failure);
      // Parked orders served by this write are parked again (at their place in front) for onParkedDropped.
      const unserved = [...tick.assignments].filter(([, a]) => a.fromParked).map(([orderId, a]) => ({ orderId, qty: a.keyIds.length }));
      this.parked = unserved.concat(this.parkedOrders());
      this.parkedHead = 0;
    }

    if (journaled.status === 'fulfilled') {
      if (record) {
        this.seq = record.lastSeq;
        const projected = events.map((e, i) => this.project(e, record.seq + i));
        this.deps.projector.enqueue(this.stream, projected, this.seq, 0);
      }
      for (const env of tick.awaiting) ctx.reply(env, { outcome: 'awaiting' } satisfies DeliveryReply);
    } else {
      const failure = new UnavailableError(`journal write of ${this.stream} failed`, { cause: journaled.reason });
      for (const env of tick.awaiting) ctx.fail(env, failure);
    }

    if (stored.status === 'rejected' || journaled.status === 'rejected') {
      throw new WriteFailed(`a write of ${this.stream} failed`, { cause: stored.status === 'rejected' ? stored.reason : (journaled as PromiseRejectedResult).reason });
    }
    for (const env of tick.inspects) ctx.reply(env, this.inspect());
    // Ahead of need, in the background: the next ticks take keys from what the window still holds
    // while the read runs (awaited here, every ~500 orders the batches behind it waited for a read on
    // the payment's way to delivered). A failed read is retried when keys are needed.
    if (!this.exhausted && !this.cursorDrained && this.windowSize < this.limits.window_refill_below_keys) {
      this.prefetch ??= this.refill()
        .catch(() => {})
        .finally(() => (this.prefetch = undefined));
    }
  }

  /**
   * The tick's assignments, with the `delivered` records its asks brought. A record refused for a taken
   * seq (its order actor's view was stale: a write of an earlier incarnation had landed) refuses the
   * whole transaction, which then committed nothing: it is made again without the records, so one
   * stale order does not fail the keys of every order beside it; each then writes its own record (the
   * reply says not `recorded`), and only the stale one fails, on its own.
   */
  private async store(tick: Tick, assignments: CardKeyAssignment[], now: number): Promise<void> {
    const riders: JournalRecord[] = [];
    for (const a of tick.assignments.values()) if (a.journal) riders.push(a.journal);
    try {
      await this.deps.cardKeys.assign(assignments, now, riders);
    } catch (error) {
      if (!(error instanceof JournalConflictError) || riders.length === 0) throw error;
      for (const a of tick.assignments.values()) a.journal = undefined;
      await this.deps.cardKeys.assign(assignments, now, []);
      try {
        this.deps.onRidersRefused?.(riders);
      } catch {
        // metrics and logs only
      }
    }
  }

  /**
   * Waits for the window's background top-up, if one runs: whatever reads or reloads the window
   * after it must see it (a reload would otherwise be undone by the top-up landing after it).
   */
  private async prefetched(): Promise<void> {
    if (this.prefetch) await this.prefetch;
  }

  private announce(orderId: string, keyIds: number[]): void {
    try {
      this.deps.onAssigned(orderId, keyIds);
    } catch {
      // the engine's callback must not undo a durable assignment; it re-drives undelivered orders itself
    }
  }

  /** The outside world's view of a journal event (restocked is internal). */
  private project(e: DeliveryEvent, seq: number): ProjectedEvent {
    if (e.type !== 'card_keys_exhausted') return { seq };
    const eventId = eventIdOf(this.stream, seq);
    const merchantId = this.deps.merchantOf(this.skuId);
    const type = 'sku.card_keys_exhausted';
    const body = { eventId, type, at: isoTime(e.at), merchantId, skuId: this.skuId, awaitingOrders: e.awaitingOrders };
    return { seq, outbox: { eventId, subject: eventSubject(merchantId, type), body: JSON.stringify(body), at: e.at } };
  }

  // ---- bookkeeping ---------------------------------------------------------------------------

  private remember(orderId: string, keyIds: number[]): void {
    this.known.set(orderId, keyIds);
  }

  private get parkedCount(): number {
    return this.parked.length - this.parkedHead;
  }

  private parkedOrders(): Parked[] {
    return this.parked.slice(this.parkedHead);
  }

  private compactParked(): void {
    if (this.parkedHead === 0) return;
    this.parked = this.parked.slice(this.parkedHead);
    this.parkedHead = 0;
  }

  /** While orders are parked, a timer looks for keys that arrived without a tell. */
  private armRecheck(ctx: ActorContext<DeliveryMessage>): void {
    if (this.parkedCount === 0) {
      this.cancelRecheck?.();
      this.cancelRecheck = undefined;
    } else if (!this.cancelRecheck) {
      this.cancelRecheck = ctx.schedule(this.limits.parked_recheck_ms, { type: '$recheck' });
    }
  }

  private inspect(): DeliveryInspection {
    return {
      skuId: this.skuId,
      windowKeys: this.windowSize,
      parked: this.parkedOrders().map((p) => ({ ...p })),
      assignedInMemory: this.known.size,
      exhausted: this.exhausted,
    };
  }
}

function assigned(keyIds: number[], recorded = false): DeliveryReply {
  return recorded ? { outcome: 'assigned', keyIds: [...keyIds], recorded: true } : { outcome: 'assigned', keyIds: [...keyIds] };
}

/** The ask's journal record for the keys picked for it; none if it has none (or its maker fails: the order then writes its own). */
function riding(msg: Extract<DeliveryMessage, { type: 'assign' }>, keyIds: number[]): JournalRecord | undefined {
  if (!msg.record) return undefined;
  try {
    return msg.record([...keyIds]);
  } catch {
    return undefined;
  }
}

function validAssign(msg: { orderId: unknown; qty: unknown }, limits: DeliveryLimits): boolean {
  return (
    typeof msg.orderId === 'string' &&
    msg.orderId.length >= 1 &&
    msg.orderId.length <= order_id_length_max &&
    Number.isInteger(msg.qty) &&
    (msg.qty as number) >= 1 &&
    (msg.qty as number) <= limits.order_keys_max
  );
}
