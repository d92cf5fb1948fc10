// One actor per order, alive only while something happens to the order: it takes the order over from
// its SKU/date's inventory actor (which made the reservation and settles it: sold, cancelled,
// expired) and owns the rest of its life: payments (each payment id once), refund_required,
// payment mismatches and delivery. Commands are handled one at a time through the pure lifecycle
// (engine/order.ts); their events go to the order's own journal stream `@o/<orderId>` by group
// commit, and the reply leaves once they are durable. See docs/orders-and-delivery.md.
//
// While the order is reserved the inventory actor is the authority (it expires reservations on its
// own timer), so a payment or cancel asks it first, and whatever it already settled is adopted.
// Adopted transitions are written to this stream only in front of an event of its own, because the
// SKU/date journal has them already (and published them).

import { isDeepStrictEqual } from 'node:util';
import {
  decideOrder,
  evolveOrder,
  TIME_ZONE_ATTRIBUTE,
  type OrderCommand,
  type OrderDelivery,
  type OrderEvent,
  type OrderState,
  type PaymentCallback,
  type RandomSource,
  type Settlement,
} from '../engine/index.ts';
import type { Delivery, JournalRecord, JournalStore, LiveEvents, OrderHistoryRow, OrderRow, OrderStatusRow } from '../persistence/ports.ts';
import { UnavailableError } from './errors.ts';
import type { GroupCommitter } from './group-commit.ts';
import type { ProjectedEvent } from './inventory-projection.ts';
import { orderOutboxEvent, type OrderEventType } from './order-events.ts';
import type { Projector } from './projector.ts';
import { OverloadedError, type ActorContext, type Behavior, type Envelope } from './runtime/index.ts';

export const ORDER_STREAM_PREFIX = '@o/';

export function orderStream(orderId: string): string {
  return `${ORDER_STREAM_PREFIX}${orderId}`;
}

export type OrderMessage =
  | { type: 'get' }
  | { type: 'pay'; payment: PaymentCallback }
  | { type: 'cancel'; userId: string }
  /** Deliver a paid order: by the engine (card keys, tickets), or with the merchant's payload (manual SKUs). */
  | { type: 'deliver'; payload?: unknown }
  /** The buyer visited (admin): a delivered ticket order. */
  | { type: 'redeem' }
  /** The order's date ended unredeemed (`at`: the end of its date): a no-show, if it is a delivered, unredeemed ticket order. */
  | { type: 'mark_no_show'; at: number }
  | { type: '$projected'; seq: number };

export type OrderActorReply =
  /** `changed`: false when the command found the order already so (a repeat). */
  | { outcome: 'ok'; order: OrderState; changed?: boolean }
  | { outcome: 'not_found' }
  | { outcome: 'invalid_state'; order: OrderState; message: string }
  /** Paid and waiting: for card keys to be uploaded, or for the merchant (manual SKUs). */
  | { outcome: 'awaiting'; order: OrderState; reason: 'card_keys' | 'merchant' };

/** What the order's SKU/date knows of it: the reservation's facts, and its settlement if any. */
export interface InventoryView {
  order: Omit<OrderState, 'status' | 'paymentIds' | 'history' | 'delivery'>;
  settlement?: Settlement;
}

export interface OrderActorDeps {
  journal: JournalStore;
  committer: GroupCommitter;
  projector: Projector;
  /** Publishes a durable write's events at once, ahead of the relay (with NATS). */
  live?: LiveEvents | undefined;
  now: () => number;
  random: RandomSource;
  /** The order as its inventory actor (or, once settled and projected, the read model) knows it. */
  lookup(orderId: string): Promise<InventoryView | undefined>;
  /** The order's live reservation if this stream must be empty (OrderService.freshReservation), so it is not read. */
  freshReservation(orderId: string): Promise<InventoryView | undefined>;
  /** Called before this stream is written while the reservation may be live. */
  noteWrittenWhileReserved(orderId: string): void;
  /**
   * Asks the inventory actor to sell the reserved stock; false if the reservation is gone. If it
   * sells, `record` (this stream's next) is written in the same transaction as the sale (true), or,
   * refused for its seq (this actor's view of its stream is stale), the sale without it: 'unrecorded'.
   */
  confirmSold(orderId: string, paymentId: string, record?: JournalRecord): Promise<boolean | 'unrecorded'>;
  /** Asks the inventory actor to release the reservation; false if it is gone. */
  release(orderId: string, userId: string): Promise<boolean>;
  /**
   * Card keys for the order from its SKU's delivery actor, or 'awaiting' while the pool is empty.
   * `fresh`: no key can be assigned to the order yet (the delivery actor need not look). `record`:
   * this stream's next record (the `delivered`) made from the keys picked; `recorded` says it was
   * written in the assignment's transaction.
   */
  assignKeys(skuId: string, orderId: string, qty: number, fresh: boolean, record?: (keyIds: number[]) => JournalRecord | undefined): Promise<AssignedKeys | 'awaiting'>;
  sku(skuId: string): { delivery: Delivery; merchantId: string; attributes?: Record<string, string> } | undefined;
  /**
   * Records the order's no-show with its buyer's limit actor (idempotent per order). Called while
   * this actor marks the order, so that a redeem waits behind it: a no-show the buyer counts is
   * always the order's.
   */
  recordNoShow(order: OrderState, at: number): Promise<void>;
  /** The SKU/date stream of the order (its read-model rows are filed under it). */
  inventoryStreamOf(order: { skuId: string; date: string }): string;
  observer: OrderObserver;
  /**
   * True: a payment that leaves the order paid (a SKU the engine delivers: card keys, tickets) is
   * followed by its delivery in the same receive of this actor, once the payment's answer left and
   * the rest of its batch was answered (one ask through the mailbox less on the way from payment to
   * delivered); what became of it is told to deliveredAfterPayment. The bus's `order.paid` consumer stays the safety net (a crash, a
   * failed delivery).
   */
  deliversAfterPayment?(): boolean;
  deliveredAfterPayment?(orderId: string, result: { reply: OrderActorReply } | { thrown: unknown }): void;
}

/** An order's card keys; `recorded`: its `delivered` record was written with them (see assignKeys). */
export interface AssignedKeys {
  keyIds: number[];
  recorded: boolean;
}

export interface OrderObserver {
  /** An order was delivered, `ms` after it was paid (by this actor's clock). */
  delivered(ms: number): void;
  /** The inventory's settlement contradicts this order's journal: nothing is changed, an operator must look. */
  conflict(orderId: string, message: string): void;
}

/** Bytes of randomness in one ticket code (128 bits: unguessable, and unique with overwhelming odds). */
export const TICKET_CODE_BYTES = 16;

const base32 = 'ABCDEFGHJKMNPQRSTVWXYZ0123456789'.padEnd(32, 'U');

export function ticketCode(random: RandomSource): string {
  const bytes = random.bytes(TICKET_CODE_BYTES);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += base32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32[(value << (5 - bits)) & 31];
  return out;
}

/** Events whose change the outside world hears of from this stream (the SKU/date's stream has the rest). */
const PUBLISHED: ReadonlySet<OrderEvent['type']> = new Set(['order.refund_required', 'order.payment_mismatch', 'order.delivered']);

export class OrderActor implements Behavior<OrderMessage> {
  private loaded = false;
  /** The order with what this stream holds plus what was adopted from the inventory since. */
  private state: OrderState | undefined;
  /** Adopted events (and the opening facts) not yet in this stream: written in front of the next own event. */
  private unjournaled: OrderEvent[] = [];
  private seq = 0;
  private projectedSeq = 0;
  private busy = false;
  /** This incarnation made the order paid (so nothing asked for its keys before it did). */
  private paidHere = false;
  /** This incarnation has asked for the order's keys. */
  private keysAsked = false;
  private readonly stream: string;

  constructor(
    private readonly orderId: string,
    private readonly deps: OrderActorDeps,
  ) {
    this.stream = orderStream(orderId);
  }

  canPassivate(): boolean {
    return !this.busy && this.projectedSeq >= this.seq;
  }

  async receive(batch: Envelope<OrderMessage>[], ctx: ActorContext<OrderMessage>): Promise<void> {
    this.busy = true;
    // A payment of this batch left the order paid: delivered once the batch's other messages are
    // answered (they do not wait behind a key assignment), however many payments it held.
    let paidNow = false;
    try {
      for (const env of batch) {
        const msg = env.msg;
        if (msg.type === '$projected') {
          this.projectedSeq = Math.max(this.projectedSeq, msg.seq);
          continue;
        }
        // Its caller was already told it failed (503: the ask timed out while an earlier command of
        // this batch waited on a slow store): it must change nothing now (API.md: an error changed nothing).
        if (ctx.answered(env)) continue;
        try {
          const reply = await this.handle(msg);
          ctx.reply(env, reply);
          if (msg.type === 'pay' && reply.outcome === 'ok') paidNow = true;
        } catch (error) {
          // Turned away by a busy SKU/date or delivery actor before anything was decided: 503
          // overloaded, as the caller's retry should read it; what this actor holds is still the
          // durable state (an ask refused changes nothing), so no reload under the very load that refused it.
          if (error instanceof OverloadedError) {
            ctx.fail(env, error);
            continue;
          }
          // A store or another actor failed: nothing was answered as done. Forget what is in memory,
          // so the next command starts again from durable state.
          ctx.fail(env, error instanceof UnavailableError ? error : new UnavailableError(`order ${this.orderId}: ${String((error as Error)?.message ?? error)}`, { cause: error }));
          this.loaded = false;
        }
      }
      if (paidNow && this.loaded) await this.deliverAfterPayment();
    } finally {
      this.busy = false;
    }
  }

  private async handle(msg: Exclude<OrderMessage, { type: '$projected' }>): Promise<OrderActorReply> {
    if (!this.loaded) await this.load();
    let state = this.state;
    if (!state) return { outcome: 'not_found' };
    switch (msg.type) {
      case 'get':
        // Its SKU/date expires a reservation without telling this actor, which a polling storefront
        // keeps in memory: past its time, a reservation is looked up there (expired, or paid meanwhile).
        if (state.status === 'reserved' && this.deps.now() >= state.expiresAt) {
          // A SKU/date too busy to answer now: the order as this actor knows it, as before the lookup.
          state = await this.refresh(false).catch(() => state!);
        }
        return { outcome: 'ok', order: state };
      case 'pay': {
        const command: OrderCommand = { type: 'pay', payment: msg.payment };
        // Past its time the reservation may be expired by its SKU/date, which does not tell this actor:
        // looked up first, or a failed payment, a repeat or a wrong amount would be answered (and a
        // mismatch journaled) on a `reserved` that no longer holds. A lookup that fails fails the
        // callback (503): the provider retries it.
        if (state.status === 'reserved' && this.deps.now() >= state.expiresAt) state = await this.refresh(false);
        let d = decideOrder(state, command, this.deps.now());
        if (d.events[0]?.type === 'order.paid') {
          // The `paid` record rides in the sale's own write: durable together, or neither — unless it is
          // refused for its seq (this actor is stale), when the sale is made without it ('unrecorded').
          const record = this.recordOf(d.events);
          const sold = await this.deps.confirmSold(this.orderId, msg.payment.paymentId, record);
          if (sold) {
            // Sold, but the record was refused: written on its own (which fails, as it should, if this
            // actor's view is stale: the next incarnation reads the stream and adopts the sale).
            if (sold === 'unrecorded') await this.deps.committer.commit(record);
            this.committed(record, d.events);
            this.paidHere = true;
            return { outcome: 'ok', order: this.state!, changed: true };
          }
          // The reservation was settled meanwhile (expired, cancelled, or sold by this payment
          // before a crash): take that over, then the payment applies to it.
          state = await this.refresh(true);
          d = decideOrder(state, command, this.deps.now());
          if (d.events[0]?.type === 'order.paid') throw new UnavailableError(`order ${this.orderId}: inventory refused the sale of a reservation it still holds`);
        }
        await this.persist(d.events);
        return { outcome: 'ok', order: this.state!, changed: d.events.some((e) => e.type === 'order.paid') };
      }
      case 'cancel': {
        if (state.userId !== msg.userId) return { outcome: 'not_found' };
        let d = decideOrder(state, { type: 'cancel' }, this.deps.now());
        if (d.events[0]?.type === 'order.cancelled') {
          if (await this.deps.release(this.orderId, msg.userId)) {
            // The SKU/date journal holds the cancel (and published it): adopt it, write nothing.
            this.adopt(d.events);
            return { outcome: 'ok', order: this.state! };
          }
          state = await this.refresh(true);
          d = decideOrder(state, { type: 'cancel' }, this.deps.now());
        }
        if (d.reply.outcome === 'invalid_state') return { outcome: 'invalid_state', order: state, message: d.reply.message };
        return { outcome: 'ok', order: state };
      }
      case 'deliver':
        return this.deliver(msg.payload);
      case 'redeem':
      case 'mark_no_show': {
        const timeZone = this.deps.sku(state.skuId)?.attributes?.[TIME_ZONE_ATTRIBUTE];
        const d = decideOrder(state, msg.type === 'redeem' ? (timeZone === undefined ? { type: 'redeem' } : { type: 'redeem', timeZone }) : { type: 'mark_no_show', at: msg.at }, this.deps.now());
        if (d.reply.outcome === 'invalid_state') return { outcome: 'invalid_state', order: state, message: d.reply.message };
        // The buyer counts the no-show first (a failure leaves the order unmarked, for the next
        // sweep); a redeem arriving meanwhile waits in this mailbox and finds the order a no-show.
        if (msg.type === 'mark_no_show' && d.events.length > 0) await this.deps.recordNoShow(state, msg.at);
        await this.persist(d.events);
        return { outcome: 'ok', order: this.state!, changed: d.events.length > 0 };
      }
    }
  }

  /**
   * The delivery of an order this actor answered a payment of in the batch just handled
   * (deliveredAfterPayment), when the order is still paid and its SKU is not the merchant's to
   * deliver. Its failure fails no one (the payment was answered): told, and left to the bus's consumer
   * and reconciliation; a store's failure makes the next command start again from durable state, as
   * any failed command does.
   */
  private async deliverAfterPayment(): Promise<void> {
    const state = this.state;
    if (this.deps.deliversAfterPayment?.() !== true || state?.status !== 'paid' || this.deps.sku(state.skuId)?.delivery === 'manual') return;
    let result: { reply: OrderActorReply } | { thrown: unknown };
    try {
      result = { reply: await this.deliver(undefined) };
    } catch (error) {
      if (!(error instanceof OverloadedError)) this.loaded = false;
      result = { thrown: error };
    }
    try {
      this.deps.deliveredAfterPayment?.(this.orderId, result);
    } catch {
      // a failing report (a metric) must not fail the payment it follows, answered already
    }
  }

  private async deliver(payload: unknown): Promise<OrderActorReply> {
    let state = this.state!;
    // The order.paid event may reach delivery before this actor heard of the sale.
    if (state.status === 'reserved') state = await this.refresh(false);
    if (state.status === 'delivered' && payload === undefined) return { outcome: 'ok', order: state, changed: false };
    // A merchant's retry of the delivery it made (its reply lost, its request timed out) is that
    // delivery, not a conflict: only another payload for a delivered order is invalid_state.
    if (state.status === 'delivered' && state.delivery?.kind === 'manual' && sameJson(state.delivery.payload, payload)) {
      return { outcome: 'ok', order: state, changed: false };
    }
    if (state.status !== 'paid') {
      return { outcome: 'invalid_state', order: state, message: `order is ${state.status}; only a paid order can be delivered` };
    }
    const sku = this.deps.sku(state.skuId);
    const kind: Delivery = sku?.delivery ?? 'manual';
    let delivery: OrderDelivery;
    if (payload !== undefined) {
      if (kind !== 'manual') return { outcome: 'invalid_state', order: state, message: `${state.skuId} is delivered by ${kind}, not by the merchant` };
      delivery = { kind: 'manual', payload };
    } else if (kind === 'manual') {
      return { outcome: 'awaiting', order: state, reason: 'merchant' };
    } else if (kind === 'ticket') {
      delivery = { kind: 'ticket', codes: Array.from({ length: state.qty }, () => ticketCode(this.deps.random)) };
    } else {
      // Keys are only ever asked for a paid order: if this incarnation paid it and has not asked,
      // no one has (a later ask, e.g. after a failed one, lets the delivery actor look).
      const fresh = this.paidHere && !this.keysAsked;
      this.keysAsked = true;
      // The `delivered` rides in the assignment's transaction when the keys are picked now: one
      // commit instead of the assignment's and then this stream's.
      let riding: { record: JournalRecord; events: OrderEvent[] } | undefined;
      const paid = state;
      const record = (keyIds: number[]): JournalRecord | undefined => {
        const d = decideOrder(paid, { type: 'deliver', delivery: { kind: 'card_key', keyIds } }, this.deps.now());
        riding = d.events.length > 0 ? { record: this.recordOf(d.events), events: d.events } : undefined;
        return riding?.record;
      };
      const keys = await this.deps.assignKeys(state.skuId, this.orderId, state.qty, fresh, record);
      if (keys === 'awaiting') return { outcome: 'awaiting', order: state, reason: 'card_keys' };
      if (keys.recorded) {
        if (!riding) throw new UnavailableError(`order ${this.orderId}: its delivery was recorded with no record made`);
        this.committed(riding.record, riding.events);
        this.observeDelivered(state);
        return { outcome: 'ok', order: this.state!, changed: true };
      }
      delivery = { kind: 'card_key', keyIds: keys.keyIds };
    }
    const d = decideOrder(state, { type: 'deliver', delivery }, this.deps.now());
    await this.persist(d.events);
    if (d.events.length > 0) this.observeDelivered(state);
    return { outcome: 'ok', order: this.state!, changed: d.events.length > 0 };
  }

  /** Tells the observer how long the order (`paid`, as it was) took from paid to delivered. */
  private observeDelivered(paid: OrderState): void {
    const paidAt = [...paid.history].reverse().find((h) => h.status === 'paid')?.at;
    if (paidAt !== undefined) this.deps.observer.delivered(this.deps.now() - paidAt);
  }

  /** Reads this order's stream; if it does not settle the order, asks the inventory what it knows. */
  private async load(): Promise<void> {
    this.state = undefined;
    this.unjournaled = [];
    this.seq = 0;
    // A fresh reservation's stream is empty: no read (a paid order's activation spent one SELECT on it).
    const fresh = await this.deps.freshReservation(this.orderId);
    if (fresh) {
      this.adopt([{ type: 'order.reserved', order: fresh.order, at: fresh.order.createdAt }]);
      this.loaded = true;
      return;
    }
    const records = await this.deps.journal.readAfter(this.stream, 0);
    // The read model's checkpoint of an order stream not written lately is in the store only (the
    // projector keeps the recent ones): read when there is something to compare it with.
    if (records.length > 0) this.projectedSeq = Math.max(this.projectedSeq, await this.deps.projector.checkpointOf(this.stream));
    let state: OrderState | undefined;
    // Events of this stream the read model may lack (a crash right after their write) are handed
    // to the projector again; it is idempotent.
    const reprojected: ProjectedEvent[] = [];
    for (const record of records) {
      if (record.seq !== this.seq + 1) throw new UnavailableError(`journal of ${this.stream} is not contiguous at seq ${this.seq}`);
      for (const raw of record.events) {
        this.seq++;
        state = evolveOrder(state, raw as OrderEvent);
        if (this.seq > this.projectedSeq) {
          const projected = this.projectOne(raw as OrderEvent, state, this.seq);
          if (projected) reprojected.push(projected);
        }
      }
    }
    if (this.seq > this.projectedSeq) this.deps.projector.enqueue(this.stream, reprojected, this.seq, 0);
    this.state = state;
    this.loaded = true;
    if (!state || state.status === 'reserved') {
      try {
        await this.refresh(false);
      } catch (error) {
        // Loaded is what is durable: an empty stream whose reservation could not be looked up (its
        // SKU/date too busy) is not an order known to be unknown — the next message loads again.
        if (!this.state) this.loaded = false;
        throw error;
      }
    }
  }

  /** Takes over what the inventory settled. `mustKnow`: the inventory refused a command, so it must have settled it. */
  private async refresh(mustKnow: boolean): Promise<OrderState> {
    const view = await this.deps.lookup(this.orderId);
    if (!view) {
      if (this.state) throw new UnavailableError(`order ${this.orderId} is unknown to its inventory`);
      return undefined as never;
    }
    if (!this.state) {
      const opened: OrderEvent = { type: 'order.reserved', order: view.order, at: view.order.createdAt };
      this.adopt([opened]);
    }
    if (view.settlement) {
      const d = decideOrder(this.state!, { type: 'adopt', settlement: view.settlement }, this.deps.now());
      if (d.reply.outcome === 'conflict') {
        this.deps.observer.conflict(this.orderId, d.reply.message);
        throw new UnavailableError(`order ${this.orderId}: ${d.reply.message}`);
      }
      this.adopt(d.events);
    } else if (mustKnow) {
      throw new UnavailableError(`order ${this.orderId}: the inventory neither holds nor settled it`);
    }
    return this.state!;
  }

  private adopt(events: OrderEvent[]): void {
    for (const e of events) {
      this.state = evolveOrder(this.state, e);
      this.unjournaled.push(e);
    }
  }

  /** Writes the adopted events and `events` as one record; applies them once durable. */
  private async persist(events: OrderEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.state?.status === 'reserved') this.deps.noteWrittenWhileReserved(this.orderId);
    const record = this.recordOf(events);
    await this.deps.committer.commit(record);
    this.committed(record, events);
  }

  /** This stream's next record: the adopted events, then `events`. */
  private recordOf(events: OrderEvent[]): JournalRecord {
    const all = [...this.unjournaled, ...events];
    return { stream: this.stream, seq: this.seq + 1, lastSeq: this.seq + all.length, at: this.deps.now(), events: all };
  }

  /** `record` (made by recordOf from `events`) is durable: apply, project and publish its events. */
  private committed(record: JournalRecord, events: OrderEvent[]): void {
    this.seq = record.lastSeq;
    // The adopted events were projected by the SKU/date's stream; this stream projects its own.
    const projected: ProjectedEvent[] = [];
    let seq = record.lastSeq - events.length + 1;
    this.unjournaled = [];
    for (const e of events) {
      this.state = evolveOrder(this.state, e);
      const p = this.projectOne(e, this.state, seq++);
      if (p) {
        projected.push(p);
        const outbox = p.outbox;
        if (outbox && this.deps.live) this.deps.live.offer(outbox.eventId, 1, () => [outbox]);
      }
    }
    this.deps.projector.enqueue(this.stream, projected, this.seq, 0);
  }

  private projectOne(e: OrderEvent, state: OrderState, seq: number): ProjectedEvent | undefined {
    if (e.type === 'order.reserved' || e.type === 'order.cancelled' || e.type === 'order.expired') return undefined;
    const stream = this.deps.inventoryStreamOf(state);
    const row: OrderRow = {
      orderId: state.orderId,
      stream,
      userId: state.userId,
      skuId: state.skuId,
      date: state.date,
      qty: state.qty,
      amountCents: state.amountCents,
      status: state.status as OrderStatusRow,
      createdAt: state.createdAt,
      expiresAt: state.expiresAt,
      updatedAt: e.at,
      seq,
      paymentId: paidBy(state),
      delivery: state.delivery ?? null,
    };
    if (state.visit) row.visit = state.visit;
    if (e.type === 'order.redeemed' || e.type === 'order.no_show') {
      // A line in the order's history; not an event of the contract.
      const cause = e.type === 'order.redeemed' ? 'redeemed' : 'no_show';
      return { seq, change: { row, history: { orderId: state.orderId, stream: this.stream, seq, status: row.status, at: e.at, cause } } };
    }
    if (!PUBLISHED.has(e.type)) return { seq, change: { row } };
    const cause =
      e.type === 'order.delivered'
        ? 'delivered'
        : e.type === 'order.refund_required'
          ? `refund payment ${e.paymentId}`
          : `payment_mismatch ${(e as Extract<OrderEvent, { type: 'order.payment_mismatch' }>).paymentId} of ${(e as Extract<OrderEvent, { type: 'order.payment_mismatch' }>).amountCents}`;
    const history: OrderHistoryRow = { orderId: state.orderId, stream: this.stream, seq, status: row.status, at: e.at, cause };
    const merchantId = this.deps.sku(state.skuId)?.merchantId ?? 'unknown';
    const extra =
      e.type === 'order.refund_required'
        ? { paymentId: e.paymentId }
        : e.type === 'order.payment_mismatch'
          ? { paymentId: e.paymentId, paidCents: e.amountCents }
          : {};
    return {
      seq,
      change: { row, history },
      outbox: orderOutboxEvent(e.type as OrderEventType, this.stream, seq, e.at, merchantId, row, extra),
    };
  }
}

/** The payment that paid the order: the cause of its `paid` transition. */
function paidBy(state: OrderState): string | null {
  const paid = state.history.find((h) => h.status === 'paid');
  return paid && paid.cause.startsWith('payment ') ? paid.cause.slice('payment '.length) : null;
}

/** Two JSON payloads alike as stored (after a reload the journal's copy holds 0 for -0), in any key order. */
function sameJson(a: unknown, b: unknown): boolean {
  const stored = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  return isDeepStrictEqual(stored(a), stored(b));
}
