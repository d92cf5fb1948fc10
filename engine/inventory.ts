// The inventory ledger of one SKU/date: total, reserved, sold, and the live reservations.
// decide(state, command, now) -> { events, reply } never changes the state; evolve(state, event)
// applies one event. evolve mutates the state it is given (a hot SKU/date holds 10^5 live
// reservations; copying them per event would cost more than the deduction itself), and it is
// deterministic: replaying the events of a stream rebuilds the same state (tested).

import { ReservationIndex } from './reservation-index.ts';

export interface Reservation {
  orderId: string;
  userId: string;
  qty: number;
  amountCents: number;
  createdAt: number;
  expiresAt: number;
  /** The buyer's limit actor holds this order's usage (a purchase rule matched): release or confirm it there. */
  limited?: true;
}

export interface InventoryState {
  total: number;
  reserved: number;
  sold: number;
  /** Live reservations, in the order they were made. */
  reservations: ReservationIndex;
  /** True while every reservation expires no earlier than the one before it, so expiry may stop early. */
  expiryMonotonic: boolean;
  lastExpiresAt: number;
  /** Card keys already added to the total (card_key SKUs). */
  keysCounted: number;
}

export type ReleaseReason = 'cancelled' | 'expired';

/** What a settlement event repeats of its reservation, so it is a complete fact on its own (events for the outside world are made from it). */
export type SettledFacts = Pick<Reservation, 'orderId' | 'userId' | 'qty' | 'amountCents' | 'createdAt' | 'expiresAt'>;

function settledFacts(r: Reservation): SettledFacts {
  return { orderId: r.orderId, userId: r.userId, qty: r.qty, amountCents: r.amountCents, createdAt: r.createdAt, expiresAt: r.expiresAt };
}

/** A live reservation whose expiry has come, met by a command before the expiry pass: it expires now. */
function expiredNow(r: Reservation, now: number): Decision {
  return { events: [{ type: 'released', ...settledFacts(r), reason: 'expired', at: now }], reply: { outcome: 'not_reserved' } };
}

export interface IdempotencyMark {
  key: string;
  hash: string;
}

export type InventoryCommand =
  | {
      type: 'reserve';
      orderId: string;
      userId: string;
      qty: number;
      unitPriceCents: number;
      ttl_ms: number;
      idempotency?: IdempotencyMark;
      /** A purchase rule matched: the buyer's limit actor holds the usage. */
      limited?: true;
      /**
       * Only refuse: the buyer's limit actor holds nothing for this order yet. Too little stock gives
       * the usual sold_out (recorded for an Idempotency-Key as always); enough stock changes nothing
       * and replies hold_required, so the caller holds the usage first and then reserves. Lets a
       * sold-out SKU/date refuse without the purchase saga (API.md: sold out never consumes usage).
       */
      probe?: true;
    }
  | { type: 'cancel'; orderId: string; userId: string }
  | { type: 'expire_due'; max_orders: number }
  /** The order was paid by `paymentId`: its reserved stock becomes sold. */
  | { type: 'confirm_sold'; orderId: string; paymentId: string }
  | { type: 'set_total'; total: number }
  /**
   * The SKU now holds `keysTotal` card keys: the total grows by the keys not counted yet. Idempotent,
   * so an upload whose stock change failed is counted by the next one (or its retry).
   */
  /** `probe`: the same answer, nothing changed (would that many keys fit under the total's bound?). */
  | { type: 'count_keys'; keysTotal: number; probe?: boolean }
  /**
   * The first purchase rule arrives (actors/rule-adoption.ts): every live reservation created at or
   * after `from_ms` is from now on limited (its release or sale is told to the buyer's limit actor),
   * and the reply lists them all, limited before or not, for their buyers to adopt. Idempotent. One
   * event however many reservations (a hot SKU/date may hold 10^5: one journal row, not 10^5).
   */
  | { type: 'limit_reservations'; from_ms: number };

export type InventoryEvent =
  | ({ type: 'reserved'; idempotency?: IdempotencyMark } & Reservation)
  | ({ type: 'released'; reason: ReleaseReason; at: number } & SettledFacts)
  | ({ type: 'sold'; at: number; paymentId: string } & SettledFacts)
  | { type: 'total_set'; total: number; at: number }
  | { type: 'keys_counted'; keysTotal: number; total: number; at: number }
  /** A refusal recorded only so that an Idempotency-Key replays the same answer after a restart. */
  | { type: 'refused'; userId: string; error: 'sold_out'; qty: number; at: number; idempotency: IdempotencyMark }
  /**
   * Every live reservation created at or after `from_ms` is limited from now on (see
   * limit_reservations); `from_ms` is at least 0 (JSON has no -Infinity, and no reservation is older).
   */
  | { type: 'limited'; from_ms: number; at: number }
  /**
   * Changes nothing: written by the first incarnation after a write whose outcome is unknown (its
   * deadline passed; it may still commit). It takes that write's seq first, so the write can never
   * commit behind the new incarnation's back (the journal's (stream, seq) key) — or, if the write
   * did commit, the fence fails and the incarnation recovers again and sees it.
   */
  | { type: 'fenced'; at: number };

export type InventoryReply =
  | { outcome: 'reserved'; reservation: Reservation }
  | { outcome: 'sold_out'; available: number }
  /** A probe (see the reserve command) found enough stock: nothing changed; hold the usage, then reserve. */
  | { outcome: 'hold_required'; available: number }
  | { outcome: 'released'; reservation: Reservation }
  | { outcome: 'expired'; count: number; nextExpiresAt: number | undefined }
  | { outcome: 'sold'; reservation: Reservation; paymentId: string }
  /** The order is not a live reservation of this SKU/date (already settled, or someone else's). */
  | { outcome: 'not_reserved' }
  /** With what is taken as of the decision (durable once the reply leaves): a stock change's whole answer. */
  /** `counted`: of a count_keys, the keys it added to the stock now (0: all were counted already). */
  | { outcome: 'total_set'; total: number; reserved: number; sold: number; counted?: number }
  /** The live reservations created at or after the command's `from_ms` (limited now; as they were decided, before that). */
  | { outcome: 'limited'; reservations: Reservation[] }
  | { outcome: 'invalid_state'; message: string }
  | { outcome: 'invalid_request'; message: string };

export interface Decision {
  events: InventoryEvent[];
  reply: InventoryReply;
}

/** Upper bounds of the ledger (TIGER_STYLE: a limit on everything). */
export const INVENTORY_TOTAL_MAX = 1_000_000_000;
/** The one date a `card_key` SKU has stock on: its keys are one pool, counted into this date (API.md). */
export const CARD_KEY_DATE = 'open';
export const ORDER_QTY_MAX = 100;
/** The payment id of an order whose amount is 0: sold at once, with no callback. */
export const FREE_PAYMENT_ID = 'free';

export function emptyInventory(): InventoryState {
  return { total: 0, reserved: 0, sold: 0, reservations: new ReservationIndex(), expiryMonotonic: true, lastExpiresAt: 0, keysCounted: 0 };
}

function totalSet(state: InventoryState, total: number): InventoryReply {
  return { outcome: 'total_set', total, reserved: state.reserved, sold: state.sold };
}

export function available(state: InventoryState): number {
  return state.total - state.reserved - state.sold;
}

function isCount(n: unknown, max: number): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= max;
}

export function decide(state: InventoryState, command: InventoryCommand, now: number): Decision {
  switch (command.type) {
    case 'reserve': {
      if (!isCount(command.qty, ORDER_QTY_MAX) || command.qty < 1) {
        return { events: [], reply: { outcome: 'invalid_request', message: 'qty must be an integer from 1 to 100' } };
      }
      if (!isCount(command.unitPriceCents, Number.MAX_SAFE_INTEGER / ORDER_QTY_MAX) || !isCount(command.ttl_ms, 365 * 86_400_000)) {
        return { events: [], reply: { outcome: 'invalid_request', message: 'price and ttl must be non-negative integers' } };
      }
      if (state.reservations.has(command.orderId)) {
        return { events: [], reply: { outcome: 'invalid_request', message: 'order id already used' } };
      }
      const left = available(state);
      if (left < command.qty) {
        const events: InventoryEvent[] = command.idempotency
          ? [{ type: 'refused', userId: command.userId, error: 'sold_out', qty: command.qty, at: now, idempotency: command.idempotency }]
          : [];
        return { events, reply: { outcome: 'sold_out', available: left } };
      }
      if (command.probe) return { events: [], reply: { outcome: 'hold_required', available: left } };
      // The event is also the reply's reservation: one object per order on the hot path (the index
      // keeps its fields in columns). A limited one is its own literal, so that both have a hidden
      // class each whatever the order of their fields' assignment.
      const amountCents = command.qty * command.unitPriceCents;
      const expiresAt = now + command.ttl_ms;
      const event: Extract<InventoryEvent, { type: 'reserved' }> = command.limited
        ? { type: 'reserved', orderId: command.orderId, userId: command.userId, qty: command.qty, amountCents, createdAt: now, expiresAt, limited: true }
        : { type: 'reserved', orderId: command.orderId, userId: command.userId, qty: command.qty, amountCents, createdAt: now, expiresAt };
      if (command.idempotency) event.idempotency = command.idempotency;
      // API.md: an order whose amount is 0 needs no payment; it is sold in the same write.
      if (event.amountCents === 0) {
        const sold: InventoryEvent = { type: 'sold', ...settledFacts(event), at: now, paymentId: FREE_PAYMENT_ID };
        return { events: [event, sold], reply: { outcome: 'reserved', reservation: event } };
      }
      return { events: [event], reply: { outcome: 'reserved', reservation: event } };
    }
    case 'cancel': {
      const r = state.reservations.get(command.orderId);
      if (!r || r.userId !== command.userId) return { events: [], reply: { outcome: 'not_reserved' } };
      // Past its expiry the order is expired, whether or not the expiry pass reached it yet (API.md:
      // "not paid within the TTL becomes expired"): it expires now, and the cancel finds it so.
      if (r.expiresAt <= now) return expiredNow(r, now);
      return {
        events: [{ type: 'released', ...settledFacts(r), reason: 'cancelled', at: now }],
        reply: { outcome: 'released', reservation: r },
      };
    }
    case 'expire_due': {
      const { due, nextExpiresAt } = state.reservations.due(now, command.max_orders, state.expiryMonotonic);
      const events: InventoryEvent[] = due.map((r) => ({ type: 'released', ...settledFacts(r), reason: 'expired', at: now }));
      return { events, reply: { outcome: 'expired', count: events.length, nextExpiresAt } };
    }
    case 'confirm_sold': {
      const r = state.reservations.get(command.orderId);
      if (!r) return { events: [], reply: { outcome: 'not_reserved' } };
      // A payment that arrives after the expiry (before the expiry pass got to it) takes no stock:
      // the reservation expires now, and the order makes the payment refund_required.
      if (r.expiresAt <= now) return expiredNow(r, now);
      return {
        events: [{ type: 'sold', ...settledFacts(r), at: now, paymentId: command.paymentId }],
        reply: { outcome: 'sold', reservation: r, paymentId: command.paymentId },
      };
    }
    case 'set_total': {
      if (!isCount(command.total, INVENTORY_TOTAL_MAX)) {
        return { events: [], reply: { outcome: 'invalid_request', message: `total must be an integer from 0 to ${INVENTORY_TOTAL_MAX}` } };
      }
      if (command.total < state.reserved + state.sold) {
        return {
          events: [],
          reply: {
            outcome: 'invalid_state',
            message: `total ${command.total} is below what is already taken (reserved ${state.reserved} + sold ${state.sold})`,
          },
        };
      }
      if (command.total === state.total) return { events: [], reply: totalSet(state, state.total) };
      return { events: [{ type: 'total_set', total: command.total, at: now }], reply: totalSet(state, command.total) };
    }
    case 'count_keys': {
      if (!isCount(command.keysTotal, INVENTORY_TOTAL_MAX)) {
        return { events: [], reply: { outcome: 'invalid_request', message: `keysTotal must be an integer from 0 to ${INVENTORY_TOTAL_MAX}` } };
      }
      const n = command.keysTotal - state.keysCounted;
      if (n <= 0) return { events: [], reply: Object.assign(totalSet(state, state.total), { counted: 0 }) };
      if (!isCount(state.total + n, INVENTORY_TOTAL_MAX)) {
        return { events: [], reply: { outcome: 'invalid_request', message: `total would exceed ${INVENTORY_TOTAL_MAX}` } };
      }
      const total = state.total + n;
      if (command.probe === true) return { events: [], reply: Object.assign(totalSet(state, total), { counted: n }) };
      return { events: [{ type: 'keys_counted', keysTotal: command.keysTotal, total, at: now }], reply: Object.assign(totalSet(state, total), { counted: n }) };
    }
    case 'limit_reservations': {
      const from_ms = Math.max(0, command.from_ms);
      if (!(from_ms >= 0)) return { events: [], reply: { outcome: 'invalid_request', message: 'from_ms must be a number' } };
      const reservations: Reservation[] = [];
      let unlimited = false;
      for (const r of state.reservations.values()) {
        if (r.createdAt < from_ms) continue;
        reservations.push(r);
        if (!r.limited) unlimited = true;
      }
      const events: InventoryEvent[] = unlimited ? [{ type: 'limited', from_ms, at: now }] : [];
      return { events, reply: { outcome: 'limited', reservations } };
    }
  }
}

export function evolve(state: InventoryState, event: InventoryEvent): InventoryState {
  switch (event.type) {
    case 'reserved': {
      state.reserved += event.qty;
      // The index copies the reservation's fields into its columns (the event's type and idempotency
      // mark are not the reservation's).
      state.reservations.set(event.orderId, event);
      if (event.expiresAt < state.lastExpiresAt) state.expiryMonotonic = false;
      state.lastExpiresAt = Math.max(state.lastExpiresAt, event.expiresAt);
      return state;
    }
    case 'released': {
      const r = state.reservations.get(event.orderId);
      if (!r) return state;
      state.reserved -= r.qty;
      state.reservations.delete(event.orderId);
      if (state.reservations.size === 0) {
        state.expiryMonotonic = true;
        state.lastExpiresAt = 0;
      }
      return state;
    }
    case 'sold': {
      const r = state.reservations.get(event.orderId);
      if (!r) return state;
      state.reserved -= r.qty;
      state.sold += r.qty;
      state.reservations.delete(event.orderId);
      if (state.reservations.size === 0) {
        state.expiryMonotonic = true;
        state.lastExpiresAt = 0;
      }
      return state;
    }
    case 'total_set':
      state.total = event.total;
      return state;
    case 'keys_counted':
      state.total = event.total;
      state.keysCounted = event.keysTotal;
      return state;
    case 'refused':
    case 'fenced':
      return state;
    case 'limited':
      state.reservations.replaceEach((r) => (r.createdAt >= event.from_ms && !r.limited ? Object.assign({}, r, { limited: true as const }) : undefined));
      return state;
  }
}

/** The order id an event concerns, if any. */
export function orderIdOf(event: InventoryEvent): string | undefined {
  return 'orderId' in event ? event.orderId : undefined;
}

// Snapshots: a plain JSON form of the state, with the number of its format.

/**
 * The format toSnapshot writes. A snapshot of any other format (a newer engine's, read by an older one
 * after a downgrade) is refused by fromSnapshot, and recovery replays the journal instead; snapshots
 * written before formats were numbered have none and are format 1.
 */
export const INVENTORY_SNAPSHOT_FORMAT = 1;

export interface InventorySnapshot {
  /** INVENTORY_SNAPSHOT_FORMAT; absent in snapshots taken before formats were numbered (format 1). */
  format?: number;
  total: number;
  reserved: number;
  sold: number;
  reservations: Reservation[];
  /** Absent in snapshots taken before card keys were counted (0). */
  keysCounted?: number;
}

/** A stored snapshot recovery must not start from (another format, a field missing or out of range). */
export class InvalidSnapshotError extends Error {
  override name = 'InvalidSnapshotError';
}

export function toSnapshot(state: InventoryState): InventorySnapshot {
  const reservations: Reservation[] = [];
  for (const r of state.reservations.values()) {
    const copy: Reservation = { orderId: r.orderId, userId: r.userId, qty: r.qty, amountCents: r.amountCents, createdAt: r.createdAt, expiresAt: r.expiresAt };
    if (r.limited) copy.limited = true;
    reservations.push(copy);
  }
  return { format: INVENTORY_SNAPSHOT_FORMAT, total: state.total, reserved: state.reserved, sold: state.sold, reservations, keysCounted: state.keysCounted };
}

const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const instant = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The state a stored snapshot holds, checked field by field: what a store hands back is only JSON
 * (a snapshot of another format, or one a tool rewrote), and a missing count would otherwise make
 * the ledger's arithmetic NaN — every comparison false, so stock checks pass. Throws
 * InvalidSnapshotError for anything toSnapshot does not write.
 */
export function fromSnapshot(stored: unknown): InventoryState {
  const s = stored as Partial<Record<keyof InventorySnapshot, unknown>> | null;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new InvalidSnapshotError('snapshot is not an object');
  if (s.format !== undefined && s.format !== INVENTORY_SNAPSHOT_FORMAT) throw new InvalidSnapshotError(`snapshot format ${String(s.format)} is not ${INVENTORY_SNAPSHOT_FORMAT}`);
  if (!count(s.total) || !count(s.reserved) || !count(s.sold) || (s.keysCounted !== undefined && !count(s.keysCounted)) || !Array.isArray(s.reservations)) {
    throw new InvalidSnapshotError('snapshot counts are missing or not whole numbers of at least 0');
  }
  if (s.reserved + s.sold > s.total) throw new InvalidSnapshotError(`snapshot takes more than its total: reserved ${s.reserved} + sold ${s.sold} > ${s.total}`);
  const state = emptyInventory();
  state.total = s.total;
  state.sold = s.sold;
  state.keysCounted = s.keysCounted ?? 0;
  for (const item of s.reservations as unknown[]) {
    const r = item as Partial<Record<keyof Reservation, unknown>> | null;
    if (
      typeof r !== 'object' || r === null ||
      typeof r.orderId !== 'string' || r.orderId === '' || typeof r.userId !== 'string' || r.userId === '' ||
      !count(r.qty) || r.qty === 0 || !count(r.amountCents) || !instant(r.createdAt) || !instant(r.expiresAt) ||
      (r.limited !== undefined && r.limited !== true)
    ) {
      throw new InvalidSnapshotError('snapshot holds a malformed reservation');
    }
    if (state.reservations.has(r.orderId)) throw new InvalidSnapshotError(`snapshot holds reservation ${r.orderId} twice`);
    const reservation: Extract<InventoryEvent, { type: 'reserved' }> = { type: 'reserved', orderId: r.orderId, userId: r.userId, qty: r.qty, amountCents: r.amountCents, createdAt: r.createdAt, expiresAt: r.expiresAt };
    if (r.limited) reservation.limited = true;
    evolve(state, reservation);
  }
  if (state.reserved !== s.reserved) throw new InvalidSnapshotError(`snapshot is inconsistent: reserved ${s.reserved} != sum of reservations ${state.reserved}`);
  return state;
}
