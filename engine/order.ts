// The lifecycle of one order: reserved -> paid -> delivered; reserved -> cancelled | expired;
// a payment that arrives after expiry or cancel -> refund_required (stock is not taken again).
// decide(state, command, now) -> { events, reply }; evolve(state, event) -> new state (pure).

export type OrderStatus = 'reserved' | 'paid' | 'delivered' | 'cancelled' | 'expired' | 'refund_required';

export const COUNTED_STATUSES: ReadonlySet<OrderStatus> = new Set(['reserved', 'paid', 'delivered']);

/**
 * The end of an order's date (its next midnight, UTC): a delivered ticket order not redeemed by then
 * is a no-show (API.md), so it can no longer be redeemed. NaN for a date that is not a day (`open`).
 */
export function visitDeadline(date: string, timeZone?: string): number {
  const nextMidnightUtc = Date.parse(`${date}T00:00:00Z`) + 86_400_000;
  // `open` (or any non-day) never ends, in any zone: the formatter below throws on an invalid time.
  if (Number.isNaN(nextMidnightUtc)) return Number.NaN;
  if (timeZone === undefined || timeZone === 'UTC' || !isTimeZone(timeZone)) return nextMidnightUtc;
  // The instant whose wall clock in the zone reads the next day's 00:00: t + offset(t) = that reading.
  // A second pass settles a daylight-saving change between the guess and the answer. Where the clock
  // skips midnight (Santiago, Havana move forward at 00:00) no instant reads 00:00: the next day starts
  // at the change, the later of the two guesses (the second one lands an hour before it).
  const t0 = nextMidnightUtc - zoneOffsetMs(timeZone, nextMidnightUtc);
  const t1 = nextMidnightUtc - zoneOffsetMs(timeZone, t0);
  return t1 + zoneOffsetMs(timeZone, t1) === nextMidnightUtc ? t1 : Math.max(t0, t1);
}

/**
 * The SKU attribute naming its venue's time zone (an IANA name, e.g. `America/Los_Angeles`): a ticket's
 * date ends at midnight there, not at midnight UTC (a venue west of UTC lost the evening of its date).
 */
export const TIME_ZONE_ATTRIBUTE = 'timeZone';

/**
 * Whether `name` is a time zone this runtime knows (IANA names; Intl throws on others). A SKU stored
 * with another value (before names were checked, or a zone newer than this runtime's data) ends its
 * dates at midnight UTC rather than failing its redeems and the no-show sweep.
 */
export function isTimeZone(name: string): boolean {
  try {
    zoneFormat(name);
    return true;
  } catch {
    return false;
  }
}

/** Formatters by zone (making one is slow; the zones a node sells in are few). */
const zoneFormats = new Map<string, Intl.DateTimeFormat>();

function zoneFormat(timeZone: string): Intl.DateTimeFormat {
  let f = zoneFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    if (zoneFormats.size < 1_000) zoneFormats.set(timeZone, f);
  }
  return f;
}

/** How far the zone's wall clock is ahead of UTC at `at` (ms; negative west of UTC). */
function zoneOffsetMs(timeZone: string, at: number): number {
  const parts = zoneFormat(timeZone).formatToParts(new Date(at));
  const get = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return wall - (at - (((at % 1_000) + 1_000) % 1_000));
}

/** Whether the order was delivered before `deadline` (its `delivered` transition; false while undelivered). */
export function deliveredBefore(state: OrderState, deadline: number): boolean {
  for (const t of state.history) if (t.status === 'delivered') return t.at < deadline;
  return false;
}

export interface OrderTransition {
  status: OrderStatus;
  at: number;
  /** What caused it: `created`, `cancelled`, `expired`, `payment <id>`, ... */
  cause: string;
}

/** What a delivered order received. Card keys are named by their ids: the keys never leave the store. */
export type OrderDelivery =
  | { kind: 'card_key'; keyIds: number[] }
  | { kind: 'ticket'; codes: string[] }
  | { kind: 'manual'; payload: unknown };

/** A settlement made by the order's inventory actor (it owns the reservation until then). */
export type Settlement = ({ status: 'paid'; paymentId: string } | { status: 'cancelled' | 'expired' }) & {
  /** When the inventory actor settled it (the time of the adopted transition). */
  at?: number;
};

export interface OrderState {
  orderId: string;
  userId: string;
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  createdAt: number;
  expiresAt: number;
  status: OrderStatus;
  /** Payments already applied, so a repeated callback changes nothing. */
  paymentIds: string[];
  history: OrderTransition[];
  delivery?: OrderDelivery;
  /** A delivered ticket order: visited (redeemed), or not by the end of its date (a no-show). */
  visit?: { kind: 'redeemed' | 'no_show'; at: number };
}

export interface PaymentCallback {
  paymentId: string;
  amountCents: number;
  status: 'succeeded' | 'failed';
}

export type OrderCommand =
  | { type: 'pay'; payment: PaymentCallback }
  | { type: 'cancel' }
  | { type: 'expire' }
  | { type: 'deliver'; delivery: OrderDelivery }
  /** The inventory actor settled the reservation (sold, cancelled, expired): the order takes it over. */
  | { type: 'adopt'; settlement: Settlement }
  /** The buyer visited (POST /v1/orders/{id}/redeem): only a delivered ticket order. */
  /** `timeZone`: the venue's (its SKU's TIME_ZONE_ATTRIBUTE), whose midnight ends the order's date; UTC when absent. */
  | { type: 'redeem'; timeZone?: string }
  /** The order's date ended unredeemed (`at`: the end of its date). */
  | { type: 'mark_no_show'; at: number };

export type OrderEvent =
  | { type: 'order.reserved'; order: Omit<OrderState, 'status' | 'paymentIds' | 'history'>; at: number }
  | { type: 'order.paid'; paymentId: string; at: number }
  | { type: 'order.cancelled'; at: number }
  | { type: 'order.expired'; at: number }
  | { type: 'order.delivered'; delivery: OrderDelivery; at: number }
  | { type: 'order.refund_required'; paymentId: string; at: number }
  | { type: 'order.payment_mismatch'; paymentId: string; amountCents: number; at: number }
  | { type: 'order.redeemed'; at: number }
  | { type: 'order.no_show'; at: number };

export type OrderReply =
  | { outcome: 'ok'; status: OrderStatus }
  | { outcome: 'invalid_state'; status: OrderStatus; message: string }
  /** The adopted settlement contradicts what this order recorded (a bug or a corrupted store). */
  | { outcome: 'conflict'; status: OrderStatus; message: string };

export interface OrderDecision {
  events: OrderEvent[];
  reply: OrderReply;
}

const FINAL_FOR_CANCEL: ReadonlySet<OrderStatus> = new Set(['paid', 'delivered', 'expired', 'refund_required']);

export function decideOrder(state: OrderState, command: OrderCommand, now: number): OrderDecision {
  const ok = (events: OrderEvent[], status: OrderStatus): OrderDecision => ({ events, reply: { outcome: 'ok', status } });
  switch (command.type) {
    case 'pay': {
      const p = command.payment;
      if (state.paymentIds.includes(p.paymentId) || p.status === 'failed') return ok([], state.status);
      if (p.amountCents !== state.amountCents) {
        return ok([{ type: 'order.payment_mismatch', paymentId: p.paymentId, amountCents: p.amountCents, at: now }], state.status);
      }
      if (state.status === 'reserved') return ok([{ type: 'order.paid', paymentId: p.paymentId, at: now }], 'paid');
      if (state.status === 'cancelled' || state.status === 'expired' || state.status === 'refund_required') {
        return ok([{ type: 'order.refund_required', paymentId: p.paymentId, at: now }], 'refund_required');
      }
      // Paid or delivered already, by another payment: the second payment must be refunded too,
      // but the order keeps its status; a refund workflow reads the event.
      return ok([{ type: 'order.refund_required', paymentId: p.paymentId, at: now }], state.status);
    }
    case 'cancel':
      if (state.status === 'cancelled') return ok([], 'cancelled');
      if (FINAL_FOR_CANCEL.has(state.status)) {
        return { events: [], reply: { outcome: 'invalid_state', status: state.status, message: `order is ${state.status}` } };
      }
      return ok([{ type: 'order.cancelled', at: now }], 'cancelled');
    case 'expire':
      if (state.status !== 'reserved') return ok([], state.status);
      return ok([{ type: 'order.expired', at: now }], 'expired');
    case 'deliver':
      if (state.status === 'delivered') return ok([], 'delivered');
      if (state.status !== 'paid') {
        return { events: [], reply: { outcome: 'invalid_state', status: state.status, message: `order is ${state.status}` } };
      }
      return ok([{ type: 'order.delivered', delivery: command.delivery, at: now }], 'delivered');
    case 'redeem': {
      if (state.visit?.kind === 'redeemed') return ok([], state.status);
      if (state.status !== 'delivered' || state.delivery?.kind !== 'ticket') {
        return { events: [], reply: { outcome: 'invalid_state', status: state.status, message: 'only a delivered ticket order can be redeemed' } };
      }
      // Its date over unredeemed, it counts as a no-show (API.md), whether or not the sweep has marked
      // it yet: a redeem then would be accepted or refused by when the sweep ran, and could come
      // after the buyer's limit actor recorded the no-show.
      // (One delivered after its date had passed is never a no-show: it stays redeemable.)
      const deadline = visitDeadline(state.date, command.timeZone);
      if (state.visit?.kind === 'no_show' || (now >= deadline && deliveredBefore(state, deadline))) {
        return { events: [], reply: { outcome: 'invalid_state', status: state.status, message: `the order's date ${state.date} has passed: it can no longer be redeemed` } };
      }
      return ok([{ type: 'order.redeemed', at: now }], state.status);
    }
    case 'mark_no_show':
      if (state.status !== 'delivered' || state.delivery?.kind !== 'ticket' || state.visit !== undefined) return ok([], state.status);
      // Not delivered by the end of its date (bought, paid or delivered after it): it could never be
      // redeemed in time, so it is no no-show — the buyer is not blocked for a ticket they never held.
      if (!deliveredBefore(state, command.at)) return ok([], state.status);
      return ok([{ type: 'order.no_show', at: command.at }], state.status);
    case 'adopt': {
      const st = command.settlement;
      if (state.status === 'reserved') {
        const at = st.at ?? now;
        if (st.status === 'paid') return ok([{ type: 'order.paid', paymentId: st.paymentId, at }], 'paid');
        return ok([{ type: st.status === 'cancelled' ? 'order.cancelled' : 'order.expired', at }], st.status);
      }
      const settledAs: OrderStatus =
        state.status === 'delivered' ? 'paid' : state.status === 'refund_required' ? (state.history.find((h) => h.status === 'cancelled' || h.status === 'expired')?.status ?? 'expired') : state.status;
      const agrees = st.status === 'paid' ? settledAs === 'paid' && state.paymentIds.includes(st.paymentId) : settledAs === st.status;
      if (agrees) return ok([], state.status);
      return { events: [], reply: { outcome: 'conflict', status: state.status, message: `order is ${state.status}, inventory says ${st.status}` } };
    }
  }
}

/**
 * An order state, every field in one object literal in one order (absent `delivery` and `visit` are
 * undefined). Not `{ ...state, status }`: a spread's result took a hidden class of its own per order
 * here (2,998 of 3,000 live order actors in a heap snapshot: ~260 bytes each, and every read of a
 * state megamorphic; test/engine/order-shapes.test.ts).
 */
function orderState(
  o: Omit<OrderState, 'status' | 'paymentIds' | 'history' | 'delivery' | 'visit'>,
  status: OrderStatus,
  paymentIds: string[],
  history: OrderTransition[],
  delivery: OrderDelivery | undefined,
  visit: OrderState['visit'],
): OrderState {
  return {
    orderId: o.orderId,
    userId: o.userId,
    skuId: o.skuId,
    date: o.date,
    qty: o.qty,
    amountCents: o.amountCents,
    createdAt: o.createdAt,
    expiresAt: o.expiresAt,
    status,
    paymentIds,
    history,
    delivery,
    visit,
  };
}

export function evolveOrder(state: OrderState | undefined, event: OrderEvent): OrderState {
  if (event.type === 'order.reserved') {
    return orderState(event.order, 'reserved', [], [{ status: 'reserved', at: event.at, cause: 'created' }], undefined, undefined);
  }
  if (!state) throw new Error(`${event.type} before order.reserved`);
  const to = (status: OrderStatus, cause: string, paymentId?: string, delivery = state.delivery): OrderState =>
    orderState(
      state,
      status,
      paymentId && !state.paymentIds.includes(paymentId) ? [...state.paymentIds, paymentId] : state.paymentIds,
      status === state.status ? state.history : [...state.history, { status, at: event.at, cause }],
      delivery,
      state.visit,
    );
  switch (event.type) {
    case 'order.paid':
      return to('paid', `payment ${event.paymentId}`, event.paymentId);
    case 'order.cancelled':
      return to('cancelled', 'cancelled');
    case 'order.expired':
      return to('expired', 'expired');
    case 'order.delivered':
      return to('delivered', 'delivered', undefined, event.delivery);
    case 'order.refund_required':
      return to(
        state.status === 'paid' || state.status === 'delivered' ? state.status : 'refund_required',
        `payment ${event.paymentId}`,
        event.paymentId,
      );
    case 'order.redeemed':
      return orderState(state, state.status, state.paymentIds, state.history, state.delivery, { kind: 'redeemed', at: event.at });
    case 'order.no_show':
      return orderState(state, state.status, state.paymentIds, state.history, state.delivery, { kind: 'no_show', at: event.at });
    case 'order.payment_mismatch':
      return state.paymentIds.includes(event.paymentId)
        ? state
        : orderState(state, state.status, [...state.paymentIds, event.paymentId], state.history, state.delivery, state.visit);
  }
}
