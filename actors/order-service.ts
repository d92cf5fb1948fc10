// The purchase path and everything else the edge asks of the engine, as business outcomes
// (values, not exceptions): placing, reading and cancelling orders, setting stock, reading live
// inventory. It routes each request to the inventory actor of its SKU/date; infrastructure
// failures surface as the runtime's and the stores' typed errors, mapped to 503s at the edge.

import { RefusalAnswers } from './refusal-answers.ts';
import {
  CARD_KEY_DATE,
  INVENTORY_TOTAL_MAX,
  inventoryStream,
  orderBody,
  orderCreatedBody,
  orderIdFor,
  parseOrderId,
  type Clock,
  type InventoryCommand,
  type InventoryReply,
  type OrderBody,
  type OrderCreatedBody,
  type OrderDelivery,
  type OrderFacts,
  type OrderState,
  type PaymentCallback,
  type RandomSource,
  type Settlement,
  type BuyerOrderFacts,
  type BuyerReply,
  type Reservation,
} from '../engine/index.ts';
import type { CardKeyCipher } from '../persistence/card-key-cipher.ts';
import { STATUS_RANK, type CardKeyStore, type IdempotencyRow, type JournalRecord, type OrderHistoryRow, type OrderRow, type ProjectionStore, type Sku } from '../persistence/ports.ts';
import type { Catalog } from './catalog.ts';
import type { DeliveryMessage, DeliveryReply } from './delivery-actor.ts';
import type { AnswerKeys } from './answer-keys.ts';
import type { InventoryInspection, InventoryMessage, LiveOrder, ReplayReply } from './inventory-actor.ts';
import { SOLD_OUT_MESSAGE } from './inventory-projection.ts';
import type { AssignedKeys, InventoryView, OrderActorReply, OrderMessage } from './order-actor.ts';
import type { BuyerInspection, HoldFate, LimitMessage } from './limit-actor.ts';
import { OverloadedError, type ActorKind } from './runtime/index.ts';
import { UnavailableError } from './errors.ts';
import { Semaphore } from './semaphore.ts';
import { KeyedQueue } from './keyed-queue.ts';
import { buyerOpsView } from './ops-views.ts';

export type Failure =
  | { ok: false; error: 'not_found'; message: string }
  | { ok: false; error: 'forbidden'; message: string }
  | { ok: false; error: 'sold_out'; message: string }
  | { ok: false; error: 'not_on_sale'; message: string }
  | { ok: false; error: 'invalid_state'; message: string }
  | { ok: false; error: 'invalid_request'; message: string }
  | { ok: false; error: 'idempotency_key_reused'; message: string }
  | { ok: false; error: 'overloaded'; message: string }
  | { ok: false; error: 'limit_exceeded'; message: string; rule: string };

export type Result<T> = { ok: true; value: T } | Failure;

/** What an inventory actor answers a reserve command. */
type ReserveReply = InventoryReply | ReplayReply | { outcome: 'overloaded' };

/** An answer to replay byte for byte (the first answer to an Idempotency-Key). */
export interface StoredAnswer {
  status: number;
  body: unknown;
}

export interface PlaceOrder {
  userId: string;
  skuId: string;
  date: string;
  qty: number;
  idempotency?: { key: string; hash: string };
}

export interface StockView {
  skuId: string;
  date: string;
  total: number;
  reserved: number;
  sold: number;
  available: number;
}

export interface OrderServiceOptions {
  reservation_ttl_ms: number;
  /** Which Idempotency-Keys may have a stored answer (actors/answer-keys.ts): the others are not looked up. */
  answerKeys?: AnswerKeys;
  /**
   * Whether orders go through their buyers' limit actors (the purchase saga): while any rule is in
   * force or the first one is being adopted (actors/rule-book.ts). Read per order.
   */
  limitsActive: () => boolean;
  /**
   * An order was sold free (amount 0: sold with its reservation, no payment callback): delivery
   * starts here at once, in this process. A paid order's delivery starts in its order actor right
   * after the payment's answer (see deliveryAttempted). The bus's `order.paid` consumer stays the
   * safety net of both (a crash before delivery, a delivery that failed), and finds them delivered.
   */
  paid?: (orderId: string) => void;
  /**
   * Set: an order actor delivers a paid order right after answering its payment, and what came of it
   * (a result, or what it threw) is told here. Unset: no delivery starts in this process after a
   * payment (the bus's consumer and reconciliation deliver).
   */
  deliveryAttempted?: (orderId: string, result: Result<DeliverOutcome> | { thrown: unknown }) => void;
  /** An order refused before any SKU/date decided it (not_found, not_on_sale, limit_exceeded), by its error code. */
  refused?: (error: string) => void;
  /**
   * Whether a SKU/date not in memory is being woken after it was discarded holding work (a failed
   * write, a crash): it may hold live reservations the read model has no row for.
   */
  waking?: (stream: string) => boolean;
}

/**
 * An order's facts as purchase rules read them (engine/buyer.ts): its SKU's merchant and attributes
 * from the catalog. A SKU no longer in the catalog still counts by its id and date (no rule can match
 * its attributes).
 */
export function buyerOrderFacts(orderId: string, skuId: string, date: string, sku: Pick<Sku, 'merchantId' | 'attributes'> | undefined, qty: number, createdAt: number): BuyerOrderFacts {
  return { orderId, skuId, date, merchantId: sku?.merchantId ?? 'unknown', attributes: sku?.attributes ?? {}, qty, createdAt };
}

/** Card keys hashed or sealed in one event-loop turn at most (an upload takes up to 10,000). */
const CARD_KEYS_PER_TURN = 500;

/** Lets the event loop run what waits (I/O, other requests) before going on. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The actor kinds the service routes to. */
export interface OrderServiceActors {
  inventory: ActorKind<InventoryMessage>;
  orders: ActorKind<OrderMessage>;
  delivery: ActorKind<DeliveryMessage>;
  limits: ActorKind<LimitMessage>;
}

/** An order as the service knows it, from whichever source is freshest. */
export interface OrderView extends OrderFacts {
  userId: string;
  paymentId: string | null;
  delivery: OrderDelivery | null;
}

/** What GET /v1/orders/:id shows of a delivery (API.md): the card keys, or a payload. */
export type DeliveryBody = { cardKeys: string[] } | { payload: unknown };

/** The buyer's view of an order: the contract's body plus its delivery, once delivered. */
export type BuyerOrderBody = OrderBody & { delivery?: DeliveryBody; awaitingDelivery?: true };

/** A page of a SKU/date's settled orders (ops listing), each with the deliveries its history records. */
export interface OrdersPage {
  orders: { order: OrderRow; deliveries: number }[];
  /** The last order id of this page when another follows, else null. */
  next: string | null;
}

/** A live order of an inventory actor as a read-model row (not delivered: the actor does not deliver). */
function liveOrderRow(o: LiveOrder, stream: string): OrderRow {
  return {
    orderId: o.orderId,
    stream,
    userId: o.userId,
    skuId: o.skuId,
    date: o.date,
    qty: o.qty,
    amountCents: o.amountCents,
    status: o.status as OrderRow['status'],
    createdAt: o.createdAt,
    expiresAt: o.expiresAt,
    updatedAt: o.updatedAt ?? o.createdAt,
    seq: 0,
    paymentId: o.paymentId ?? null,
    delivery: null,
    visit: null,
  };
}

/** The outcome of asking for a paid order's delivery. */
export type DeliverOutcome = 'delivered' | 'already_delivered' | 'awaiting_card_keys' | 'awaiting_merchant';

/** An order actor's answer to a delivery, as a delivery's outcome. */
function deliverResult(orderId: string, reply: OrderActorReply): Result<DeliverOutcome> {
  switch (reply.outcome) {
    case 'ok':
      return { ok: true, value: reply.changed === false ? 'already_delivered' : 'delivered' };
    case 'awaiting':
      return { ok: true, value: reply.reason === 'card_keys' ? 'awaiting_card_keys' : 'awaiting_merchant' };
    case 'invalid_state':
      return fail('invalid_state', reply.message);
    default:
      return fail('not_found', `unknown order ${orderId}`);
  }
}

function fail<E extends Exclude<Failure['error'], 'limit_exceeded'>>(error: E, message: string): { ok: false; error: E; message: string };
function fail(error: 'limit_exceeded', message: string, rule: string): { ok: false; error: 'limit_exceeded'; message: string; rule: string };
function fail(error: Failure['error'], message: string, rule?: string): Failure {
  return (rule === undefined ? { ok: false, error, message } : { ok: false, error, message, rule }) as Failure;
}

/** A manual delivery's payload, as JSON, at most (the read model's `orders.delivery` holds 64 KiB with the rest). */
export const MANUAL_PAYLOAD_BYTES_MAX = 32 * 1024;

/** Orders remembered as written while reserved (see OrderService.freshReservation); past it, none is fresh. */
export const written_while_reserved_max = 100_000;

export class OrderService {
  /** Last known available count per stream; exact for passivated actors (nothing changes without them). */
  private readonly availability = new Map<string, number>();

  private readonly inventory: ActorKind<InventoryMessage>;
  private readonly orderActors: ActorKind<OrderMessage>;
  private readonly delivery: ActorKind<DeliveryMessage>;
  private readonly limits: ActorKind<LimitMessage>;
  /** Orders whose purchase saga (hold -> reserve -> confirm | release) is running in this process. */
  private readonly sagas = new Set<string>();
  /** Card-key uploads of each SKU, one at a time (see addCardKeys). */
  private readonly uploads = new KeyedQueue();
  /** Hashing and sealing card keys: one upload's slices at a time on the node. */
  private readonly sealing = new Semaphore(1);
  /** Keyed refusals made durable before they are sent (see refused). */
  private readonly refusals: RefusalAnswers;
  /**
   * Orders whose own stream this process wrote while their reservation was live (a wrong amount):
   * their stream is not empty although the reservation may be fresh. Past written_while_reserved_max
   * the set is dropped and no reservation counts as fresh any more (every activation reads).
   */
  private writtenWhileReserved: Set<string> | undefined = new Set();

  constructor(
    actors: OrderServiceActors,
    private readonly catalog: Catalog,
    private readonly projection: ProjectionStore,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly options: OrderServiceOptions,
    private readonly cardKeys: CardKeyStore,
    private readonly cipher: CardKeyCipher,
  ) {
    this.inventory = actors.inventory;
    this.orderActors = actors.orders;
    this.delivery = actors.delivery;
    this.limits = actors.limits;
    this.refusals = new RefusalAnswers(projection, options.answerKeys);
  }

  /** Called by inventory actors after each durable change. */
  noteAvailability(stream: string, available: number): void {
    this.availability.set(stream, available);
  }

  // ---- purchase path -------------------------------------------------------------------------

  /**
   * 201-worthy order, or a business failure; the answer to store for an Idempotency-Key. Not an async
   * function itself: an order with no rule in force (a sale's hot path) costs only the reservation's
   * ask, not one more async frame kept alive (and copied by the young-generation GC) while it waits
   * for the group commit; the saga is `placeLimited`. Never throws: a failure is a rejected promise.
   */
  placeOrder(p: PlaceOrder): Promise<StoredAnswer> {
    try {
      const sku = this.catalog.sku(p.skuId);
      const now = this.clock.now();
      if (!sku) return this.refused(p, answer(fail('not_found', `unknown SKU ${p.skuId}`)));
      const ref = this.catalog.stream(p.skuId, p.date);
      // API.md: an SKU not (yet) visible is `not_on_sale` for an order (and 404 on its page).
      if (!isOnSale(sku, now)) return this.refusedOffSale(p, sku, ref?.stream);
      if (!ref) return this.refused(p, answer(fail('not_found', `no stock for ${p.skuId} on ${p.date}`)));
      const command: Extract<InventoryCommand, { type: 'reserve' }> = {
        type: 'reserve',
        orderId: orderIdFor(now, this.random, ref.streamNo),
        userId: p.userId,
        qty: p.qty,
        unitPriceCents: sku.priceCents,
        ttl_ms: this.options.reservation_ttl_ms,
      };
      if (p.idempotency) command.idempotency = p.idempotency;
      // The purchase saga (API.md "Purchase rules"): while any rule exists, the buyer's limit actor
      // checks every rule and holds the usage first; the reservation follows; a refusal releases the
      // hold. Held even when no rule matches this SKU: a rule added later counts the order (its group
      // holds every counted order of the buyer). With no rule at all, orders skip the limit actors.
      const placed = !this.options.limitsActive() ? this.reserve(ref.stream, command, p) : this.placeLimited(ref.stream, command, p, sku, now);
      // A free order is paid with its reservation (API.md): its delivery starts here, as a payment's
      // does, not only from the bus (which may be down).
      return sku.priceCents === 0 && sku.delivery !== 'manual' ? placed.then((a) => this.startedFree(a)) : placed;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A refusal decided before any SKU/date: with an Idempotency-Key it is that key's first answer for
   * 24 h, so it is made durable before it is sent (actors/refusal-answers.ts); the gate in memory
   * alone forgot it after 10 minutes or a restart, and the same retry then placed an order.
   */
  private refused(p: PlaceOrder, a: StoredAnswer): Promise<StoredAnswer> {
    this.options.refused?.((a.body as { error?: string }).error ?? String(a.status));
    const key = p.idempotency;
    if (!key) return Promise.resolve(a);
    return this.refusals.remember({ userId: p.userId, key: key.key, requestHash: key.hash, status: a.status, body: a.body, createdAt: this.clock.now() }).then(() => a);
  }

  /**
   * Off sale. A keyed retry of an order placed while the SKU was on sale (its first answer not yet in
   * the store: written, not projected) gets that order's answer from its SKU/date, not a refusal
   * stored over it.
   */
  private async refusedOffSale(p: PlaceOrder, sku: Sku, stream: string | undefined): Promise<StoredAnswer> {
    const key = p.idempotency;
    // Asked only when it may hold an answer the read model lacks: once its sale has opened, or while it
    // is in memory (the sale was moved later after orders were placed). A SKU/date that is not in
    // memory handed all its answers to the read model before it went (canPassivate), where the gate
    // found none; before a sale has ever opened, bots' keyed orders wake nothing.
    const opened = sku.saleStartsAt === null || Date.parse(sku.saleStartsAt) <= this.clock.now();
    if (key && stream && (opened || this.inventory.has(stream))) {
      const first = await this.inventory.ask<ReplayReply | { outcome: 'unknown' } | { outcome: 'overloaded' }>(stream, { type: 'idempotency_answer', userId: p.userId, key: key.key, hash: key.hash });
      if (first.outcome !== 'unknown') return reserveAnswer(first, p);
    }
    return this.refused(p, answer(fail('not_on_sale', `${p.skuId} is not on sale`)));
  }

  private startedFree(a: StoredAnswer): StoredAnswer {
    const orderId = a.status === 201 ? (a.body as { orderId?: unknown }).orderId : undefined;
    if (typeof orderId === 'string') this.options.paid?.(orderId);
    return a;
  }

  /** The purchase saga of placeOrder (see there). */
  private async placeLimited(stream: string, command: Extract<InventoryCommand, { type: 'reserve' }>, p: PlaceOrder, sku: Sku, now: number): Promise<StoredAnswer> {
    // Sold out, as far as the last durable change said: ask the SKU/date to refuse before holding
    // any usage (most orders of a flash sale come after its stock is gone). It decides on its live
    // count: with stock back (a cancel, an expiry), nothing changed and the saga runs as usual.
    const lastKnown = this.availability.get(stream);
    if (lastKnown !== undefined && lastKnown < p.qty) {
      const probed = await this.askReserve(stream, Object.assign({}, command, { probe: true }));
      if (probed.outcome !== 'hold_required') return reserveAnswer(probed, p);
    }
    const facts = buyerOrderFacts(command.orderId, p.skuId, p.date, sku, p.qty, now);
    this.sagas.add(command.orderId);
    /** What became of the reservation: unknown when its ask failed (it may still be made). */
    let outcome: 'reserved' | 'refused' | 'unknown' = 'refused';
    try {
      let hold: BuyerReply;
      try {
        hold = await this.limits.ask<BuyerReply>(p.userId, { type: 'hold', order: facts });
      } catch (error) {
        // The hold may have been written: release it (the reserve was never sent, and the tombstone
        // makes a hold that lands later a no-op).
        this.limits.tellAlways(p.userId, { type: 'release', orderId: command.orderId, reason: 'not_reserved' });
        throw error;
      }
      if (hold.outcome === 'limit_exceeded' || hold.outcome === 'too_many_orders') {
        // A retry of a keyed order whose first attempt is still being written (its caller timed out)
        // is refused by that order's own hold: the SKU/date knows the key from the first decision and
        // answers it (once durable), as the contract's "same key, same body: the first answer" says.
        const key = command.idempotency;
        if (key) {
          const first = await this.inventory.ask<ReplayReply | { outcome: 'unknown' | 'overloaded' }>(stream, { type: 'idempotency_answer', userId: p.userId, key: key.key, hash: key.hash });
          if (first.outcome === 'replay' || first.outcome === 'idempotency_key_reused') return reserveAnswer(first, p);
        }
        return this.refused(
          p,
          hold.outcome === 'limit_exceeded'
            ? answer(fail('limit_exceeded', `refused by purchase rule ${hold.ruleId}`, hold.ruleId))
            : answer(fail('limit_exceeded', `at most ${hold.max} open orders per buyer`, 'buyer_orders_max')),
        );
      }
      if (hold.outcome !== 'held') throw new UnavailableError(`hold of ${command.orderId} answered ${hold.outcome}`);
      command.limited = true;
      outcome = 'unknown';
      const placed = await this.reserve(stream, command, p);
      const body = placed.body as { orderId?: string; amountCents?: number };
      outcome = placed.status === 201 && body.orderId === command.orderId ? 'reserved' : 'refused';
      // A free order is sold with its reservation: its usage is counted for good at once.
      if (outcome === 'reserved' && body.amountCents === 0) this.limits.tellAlways(p.userId, { type: 'confirm', orderId: command.orderId });
      return placed;
    } finally {
      this.sagas.delete(command.orderId);
      // Refused (sold out, invalid, a replay of another order): the usage is released at once.
      // Unknown (the ask failed): the reservation may still land, so the limit actor asks its SKU/date.
      if (command.limited && outcome === 'refused') this.limits.tellAlways(p.userId, { type: 'release', orderId: command.orderId, reason: 'not_reserved' });
      else if (outcome === 'unknown') this.limits.tellAlways(p.userId, { type: 'resolve', orderId: command.orderId });
    }
  }

  /**
   * SKU/dates whose inventory actor is in memory now. Every order placed without the limit actors
   * sends its reserve synchronously, activating the actor, so once the rule book has turned the saga
   * on, each such reserve still on its way is in one of these actors' mailboxes (rule adoption).
   */
  activeStreams(): string[] {
    return [...this.inventory.keys()];
  }

  /** Makes the SKU/date's live reservations created at or after `from_ms` limited; returns them (rule adoption). */
  async limitReservations(stream: string, from_ms: number): Promise<Reservation[]> {
    const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(stream, { type: 'limit_reservations', from_ms });
    if (reply.outcome === 'overloaded') throw new OverloadedError(`inventory ${stream} is overloaded`);
    if (reply.outcome !== 'limited') throw new UnavailableError(`limit_reservations of ${stream} answered ${reply.outcome}`);
    return reply.reservations;
  }

  /** The buyer's limit actor takes in an order placed while no rule existed (rule adoption). */
  adopt(userId: string, order: BuyerOrderFacts, status: 'held' | 'counted'): Promise<BuyerReply> {
    return this.limits.ask<BuyerReply>(userId, { type: 'adopt', order, status });
  }

  /**
   * The reservation and its answer. Not an async function awaiting the ask: the answer is made where
   * the ask is resolved (askMapped), so an order parked on the group commit keeps one promise alive,
   * not two plus an async frame (~400 bytes per order that every scavenge meanwhile copies).
   */
  private reserve(stream: string, command: Extract<InventoryCommand, { type: 'reserve' }>, p: PlaceOrder): Promise<StoredAnswer> {
    return this.inventory.askMapped(stream, command, reserveAnswer, p);
  }

  private askReserve(stream: string, command: Extract<InventoryCommand, { type: 'reserve' }>): Promise<ReserveReply> {
    return this.inventory.ask<ReserveReply>(stream, command);
  }

  /** The stored first answer of an Idempotency-Key, if it was already made durable and projected. */
  async storedAnswer(userId: string, key: string): Promise<(StoredAnswer & { requestHash: string; createdAt: number }) | undefined> {
    // A key certainly without one (most keys of a sale are new): no read.
    if (this.options.answerKeys?.mayExist(userId, key) === false) return undefined;
    const row: IdempotencyRow | undefined = await this.projection.idempotency(userId, key);
    return row ? { status: row.status, body: row.body, requestHash: row.requestHash, createdAt: row.createdAt } : undefined;
  }

  async getOrder(orderId: string, userId: string | undefined): Promise<Result<BuyerOrderBody & { userId: string }>> {
    const order = await this.findOrder(orderId);
    if (!order || (userId !== undefined && order.userId !== userId)) return fail('not_found', `unknown order ${orderId}`);
    // Added to the fresh body, not `{ ...orderBody(order), userId }`: a hidden class per call (docs/performance.md, "Session 10").
    const body: BuyerOrderBody & { userId: string } = Object.assign(orderBody(order), { userId: order.userId });
    if (order.status === 'delivered' && order.delivery) body.delivery = await this.deliveryBody(order.skuId, order.orderId, order.delivery);
    if (order.status === 'paid') body.awaitingDelivery = true;
    return { ok: true, value: body };
  }

  async cancelOrder(orderId: string, userId: string): Promise<Result<OrderBody>> {
    const ref = this.streamOf(orderId);
    if (!ref) return fail('not_found', `unknown order ${orderId}`);
    // Unknown to the read model and to every SKU/date that could know it: not an order (see findOrder).
    // No order actor is made for it (a journal read and asks of its SKU/date, for a made-up id).
    if (!this.orderActors.has(orderId) && !this.mayHoldUnprojected(ref.stream) && !(await this.projection.order(orderId))) {
      return fail('not_found', `unknown order ${orderId}`);
    }
    const reply = await this.orderActors.ask<OrderActorReply>(orderId, { type: 'cancel', userId });
    switch (reply.outcome) {
      case 'ok':
        return { ok: true, value: orderBody(reply.order) };
      case 'invalid_state':
        return fail('invalid_state', `order is ${reply.order.status}; only a reserved order can be cancelled`);
      default:
        return fail('not_found', `unknown order ${orderId}`);
    }
  }

  // ---- payments and delivery -----------------------------------------------------------------

  /** A verified payment callback: answered once the order's new state is durable. */
  async pay(orderId: string, payment: PaymentCallback): Promise<Result<{ orderId: string; status: string }>> {
    if (!this.streamOf(orderId)) return fail('not_found', `unknown order ${orderId}`);
    // An order left paid (by this callback, or by an earlier one whose delivery may never have
    // started: its answer lost after the payment committed, the process died) is delivered by its
    // order actor right after this answer (OrderActorDeps.deliveredAfterPayment); delivery is
    // idempotent, so a repeat of a payment for an order still paid starts it again.
    const reply = await this.orderActors.ask<OrderActorReply>(orderId, { type: 'pay', payment });
    if (reply.outcome === 'not_found') return fail('not_found', `unknown order ${orderId}`);
    return { ok: true, value: { orderId, status: reply.order.status } };
  }

  /** Whether an order actor delivers a paid order right after the payment's answer (see the option `deliveryAttempted`). */
  get deliversAfterPayment(): boolean {
    return this.options.deliveryAttempted !== undefined;
  }

  /** What the order actor's delivery right after a payment came to (OrderActorDeps.deliveredAfterPayment): told to `deliveryAttempted`. */
  deliveredAfterPayment(orderId: string, result: { reply: OrderActorReply } | { thrown: unknown }): void {
    this.options.deliveryAttempted?.(orderId, 'reply' in result ? deliverResult(orderId, result.reply) : result);
  }

  /** Delivers a paid order (the delivery consumer, the reconciler, keys arriving for a parked order). */
  async deliverPaid(orderId: string): Promise<Result<DeliverOutcome>> {
    if (!this.streamOf(orderId)) return fail('not_found', `unknown order ${orderId}`);
    return deliverResult(orderId, await this.orderActors.ask<OrderActorReply>(orderId, { type: 'deliver' }));
  }

  /** The merchant's delivery of a paid order of a `manual` SKU. */
  async deliverManual(orderId: string, payload: unknown): Promise<Result<OrderBody>> {
    // As the read model stores it (JSON.stringify may lengthen what the merchant sent: 1e20 becomes
    // 21 digits): a payload its `orders.delivery` column cannot hold would stop the projector for good.
    const stored = JSON.stringify(payload);
    if (stored === undefined || Buffer.byteLength(stored) > MANUAL_PAYLOAD_BYTES_MAX) {
      return fail('invalid_request', `the payload must be at most ${MANUAL_PAYLOAD_BYTES_MAX} bytes as JSON`);
    }
    // A number JSON cannot hold (1e400 parses as Infinity) would be stored as null: the buyer would
    // get a delivery of nothing, and the merchant's corrected retry an invalid_state.
    if (hasNonFiniteNumber(payload)) return fail('invalid_request', 'the payload holds a number out of range (JSON stores it as null)');
    if (!this.streamOf(orderId)) return fail('not_found', `unknown order ${orderId}`);
    const reply = await this.orderActors.ask<OrderActorReply>(orderId, { type: 'deliver', payload });
    switch (reply.outcome) {
      case 'ok':
        return { ok: true, value: orderBody(reply.order) };
      case 'invalid_state':
        return fail('invalid_state', reply.message);
      case 'awaiting':
        return fail('invalid_state', 'the order is awaiting delivery');
      default:
        return fail('not_found', `unknown order ${orderId}`);
    }
  }

  // ---- what order actors ask of the rest of the engine -------------------------------------

  /** The order as its inventory actor knows it, or (settled and projected) the read model. */
  /**
   * The order's reservation if its stream `@o/<orderId>` must be empty, so that the order actor need
   * not read it: the reservation is live and fresh (made since its inventory actor last recovered,
   * so no earlier process or incarnation wrote about it), and this process has not written the
   * stream while it was live. Only the order actor writes that stream, and only once its reservation
   * is settled, except for a wrong amount, which it notes here first (noteWrittenWhileReserved).
   */
  async freshReservation(orderId: string): Promise<InventoryView | undefined> {
    if (!this.writtenWhileReserved || this.writtenWhileReserved.has(orderId)) return undefined;
    const ref = this.streamOf(orderId);
    // An inventory actor not in memory holds no live reservation (it passivates only without any):
    // not fresh, and not worth waking it (an old order's activation reads its stream anyway).
    if (!ref || !this.inventory.has(ref.stream)) return undefined;
    const live = await this.inventory.ask<LiveOrder | undefined>(ref.stream, { type: 'get_order', orderId });
    if (!live?.fresh || (live as { status?: string }).status !== 'reserved') return undefined;
    return { order: this.viewOrder(live, ref) };
  }

  /** The order actor is about to write the stream of an order whose reservation may be live. */
  noteWrittenWhileReserved(orderId: string): void {
    if (!this.writtenWhileReserved) return;
    this.writtenWhileReserved.add(orderId);
    if (this.writtenWhileReserved.size > written_while_reserved_max) this.writtenWhileReserved = undefined;
  }

  async lookup(orderId: string): Promise<InventoryView | undefined> {
    const ref = this.streamOf(orderId);
    if (!ref) return undefined;
    const live = await this.inventory.ask<LiveOrder | undefined>(ref.stream, { type: 'get_order', orderId });
    const source: (LiveOrder & { updatedAt?: number }) | OrderRow | undefined = live ?? (await this.projection.order(orderId));
    if (!source) return undefined;
    const order = this.viewOrder(source, ref);
    const at = source.updatedAt;
    let settlement: Settlement | undefined;
    switch (source.status) {
      case 'reserved':
        break;
      case 'paid':
      case 'delivered':
        settlement = { status: 'paid', paymentId: source.paymentId ?? 'unknown', at };
        break;
      case 'cancelled':
      case 'expired':
        settlement = { status: source.status, at };
        break;
      default:
        // refund_required is written only by the order's own stream, which the order actor reads first.
        throw new UnavailableError(`order ${orderId}: read model says ${source.status} but the order's stream is empty`);
    }
    return settlement ? { order, settlement } : { order };
  }

  private viewOrder(source: LiveOrder | OrderRow, ref: { skuId: string; date: string }): InventoryView['order'] {
    return {
      orderId: source.orderId,
      userId: source.userId,
      skuId: ref.skuId,
      date: ref.date,
      qty: source.qty,
      amountCents: source.amountCents,
      createdAt: source.createdAt,
      expiresAt: source.expiresAt,
    };
  }

  async confirmSold(orderId: string, paymentId: string, record?: JournalRecord): Promise<boolean | 'unrecorded'> {
    const ref = this.streamOf(orderId)!;
    const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(
      ref.stream,
      record ? { type: 'sell', orderId, paymentId, record } : { type: 'confirm_sold', orderId, paymentId },
    );
    if (reply.outcome === 'overloaded') throw new OverloadedError(`inventory ${ref.stream} is overloaded`);
    // A limited reservation's buyer hears of the sale from its SKU/date once durable (limitedSold).
    if (reply.outcome !== 'sold') return false;
    return (reply as { unrecorded?: true }).unrecorded === true ? 'unrecorded' : true;
  }

  async release(orderId: string, userId: string): Promise<boolean> {
    const ref = this.streamOf(orderId)!;
    const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(ref.stream, { type: 'cancel', orderId, userId });
    if (reply.outcome === 'overloaded') throw new OverloadedError(`inventory ${ref.stream} is overloaded`);
    if (reply.outcome === 'released' && reply.reservation.limited) this.limits.tellAlways(userId, { type: 'release', orderId, reason: 'cancelled' });
    return reply.outcome === 'released';
  }

  /** What became of the order of a limit hold (the limit actor resolving holds after a crash). */
  async fateOf(orderId: string): Promise<HoldFate> {
    if (this.sagas.has(orderId)) return 'in_flight';
    let view: InventoryView | undefined;
    try {
      view = await this.lookup(orderId);
    } catch (error) {
      // A refund_required order (a payment after its end) no longer counts.
      if (error instanceof UnavailableError && /refund_required/.test(error.message)) return 'ended';
      throw error;
    }
    if (!view) return 'unknown';
    if (!view.settlement) return 'reserved';
    return view.settlement.status === 'paid' ? 'paid' : 'ended';
  }

  /** Marks a delivered ticket order as visited (admin). */
  async redeem(orderId: string): Promise<Result<OrderBody>> {
    if (!this.streamOf(orderId)) return fail('not_found', `unknown order ${orderId}`);
    const reply = await this.orderActors.ask<OrderActorReply>(orderId, { type: 'redeem' });
    if (reply.outcome === 'ok') return { ok: true, value: orderBody(reply.order) };
    if (reply.outcome === 'invalid_state') return fail('invalid_state', reply.message);
    return fail('not_found', `unknown order ${orderId}`);
  }

  /**
   * Records a no-show: the order's actor marks it, having had its buyer's limit actor record it
   * (recordBuyerNoShow) in the same turn. Returns whether the order was newly marked (false:
   * redeemed before, or marked already).
   */
  async recordNoShow(o: OrderRow, at: number): Promise<boolean> {
    const marked = await this.orderActors.ask<OrderActorReply>(o.orderId, { type: 'mark_no_show', at });
    return marked.outcome === 'ok' && marked.changed === true;
  }

  /** The buyer's side of a no-show (idempotent per order): the order's actor calls it while it marks the order. */
  async recordBuyerNoShow(order: OrderState, at: number): Promise<void> {
    const facts = buyerOrderFacts(order.orderId, order.skuId, order.date, this.catalog.sku(order.skuId), order.qty, order.createdAt);
    await this.limits.ask<BuyerReply>(order.userId, { type: 'no_show', order: facts, at });
  }

  /** The buyer's live limit state (ops). */
  /** The buyer's live limit state, as operators read it (ops-views.ts). */
  async buyer(userId: string): Promise<ReturnType<typeof buyerOpsView>> {
    return buyerOpsView(await this.limits.ask<BuyerInspection>(userId, { type: 'inspect' }));
  }

  async assignKeys(
    skuId: string,
    orderId: string,
    qty: number,
    fresh = false,
    record?: (keyIds: number[]) => JournalRecord | undefined,
  ): Promise<AssignedKeys | 'awaiting'> {
    const reply = await this.delivery.ask<DeliveryReply>(skuId, record ? { type: 'assign', orderId, qty, fresh, record } : { type: 'assign', orderId, qty, fresh });
    if (reply.outcome === 'assigned') return { keyIds: reply.keyIds, recorded: reply.recorded === true };
    if (reply.outcome === 'awaiting') return 'awaiting';
    throw new OverloadedError(`card-key delivery of ${skuId} is overloaded`);
  }

  async orderHistory(orderId: string): Promise<Result<OrderBody & { userId: string; history: Omit<OrderHistoryRow, 'orderId' | 'stream'>[] }>> {
    const order = await this.findOrder(orderId);
    if (!order) return fail('not_found', `unknown order ${orderId}`);
    const rows = await this.projection.history(orderId);
    // The read model records what happened after the reservation (a wrong amount on a reserved order
    // among it); the reservation itself is the order's start.
    const history = [
      { seq: 0, status: 'reserved' as const, at: order.createdAt, cause: 'created' },
      ...rows.map(({ seq, status, at, cause }) => ({ seq, status, at, cause })),
    ];
    // In the order of the changes: by time, then along the lifecycle (a free order is reserved, paid
    // and delivered in the same millisecond; rows of two streams may share a seq).
    const inOrder = () => history.sort((a, b) => a.at - b.at || STATUS_RANK[a.status] - STATUS_RANK[b.status]);
    inOrder();
    // The newest changes may not be projected yet: the order's actor has every transition, with its
    // time and cause (`seq` 0: not a read-model row yet).
    if (history[history.length - 1]!.status !== order.status) {
      const live = await this.orderActors.ask<OrderActorReply>(orderId, { type: 'get' });
      const seen = new Set<string>(history.map((h) => h.status));
      const transitions = live.outcome === 'ok' ? live.order.history : [];
      for (const t of transitions) {
        if (seen.has(t.status)) continue;
        seen.add(t.status);
        history.push({ seq: 0, status: t.status as OrderHistoryRow['status'], at: t.at, cause: t.cause });
      }
      inOrder();
    }
    if (history[history.length - 1]!.status !== order.status) {
      history.push({ seq: 0, status: order.status as OrderHistoryRow['status'], at: this.clock.now(), cause: 'live' });
    }
    return { ok: true, value: Object.assign(orderBody(order), { userId: order.userId, history }) };
  }

  /**
   * One page of a SKU/date's orders, by order id, after `afterOrderId`: the simulator's verdict and
   * operators read a whole sale this way. `next` is the id to continue after, null on the last page.
   * Settled orders come from the read model; live reservations (never in the read model) and orders
   * settled but not yet projected come from the SKU/date's actor; where both know an order, the one
   * further along its lifecycle wins. Each order comes with the number of deliveries its history
   * records (one grouped read per page). The SKU/date's actor is asked only while it may know orders
   * the read model lacks (mayHoldUnprojected): a passivated one handed them all over first, and
   * asking it would recover it (snapshot, journal replay, a recovery slot, idle_ms in memory) to
   * answer nothing.
   */
  async ordersPage(skuId: string, date: string, afterOrderId: string | undefined, limit: number): Promise<Result<OrdersPage>> {
    if (!this.catalog.sku(skuId)) return fail('not_found', `unknown SKU ${skuId}`);
    if (!this.catalog.stream(skuId, date)) return fail('not_found', `no stock for ${skuId} on ${date}`);
    const stream = inventoryStream(skuId, date);
    // Decided before the read model is read: a SKU/date neither in memory nor being woken now has every
    // order of its in the read model already, so the read below sees them; one that hands its last
    // orders over and passivates after this check is still asked (and woken).
    const askLive = this.mayHoldUnprojected(stream);
    // One row more than asked tells whether another page follows, so the last page says null.
    const [rows, live] = await Promise.all([
      this.projection.ordersOfStream(stream, limit + 1, afterOrderId),
      askLive ? this.inventory.ask<LiveOrder[]>(stream, { type: 'list_orders', afterOrderId: afterOrderId ?? '', limit: limit + 1 }) : ([] as LiveOrder[]),
    ]);
    const merged = new Map<string, OrderRow>(rows.map((r) => [r.orderId, r]));
    for (const o of live) {
      const known = merged.get(o.orderId);
      const row = liveOrderRow(o, stream);
      if (!known || STATUS_RANK[row.status] > STATUS_RANK[known.status]) merged.set(o.orderId, row);
    }
    const sorted = [...merged.values()].sort((a, b) => (a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0));
    const page = sorted.slice(0, limit);
    const deliveries = await this.projection.deliveriesOf(page.map((o) => o.orderId));
    return {
      ok: true,
      value: {
        orders: page.map((order) => ({ order, deliveries: deliveries.get(order.orderId) ?? 0 })),
        next: sorted.length > limit ? page[page.length - 1]!.orderId : null,
      },
    };
  }

  // ---- catalog and stock ---------------------------------------------------------------------

  /**
   * Sets the total of a SKU/date, making the date if it is new. `merchantId`: the merchant asking
   * (a merchant command), refused `forbidden` unless the SKU is theirs where the change is made.
   */
  async setStock(skuId: string, date: string, total: number, merchantId?: string): Promise<Result<StockView>> {
    const refused = this.stockRefusal(skuId, date, merchantId);
    if (refused) return refused;
    let ref = this.catalog.stream(skuId, date);
    if (!ref) {
      // A new date: checked again in the SKU's change that makes it, since an admin's change of the
      // SKU may have landed since the check above (with the date made, no change of owner or kind can).
      const made = await this.catalog.changeSku(skuId, async () => this.stockRefusal(skuId, date, merchantId) ?? (await this.catalog.ensureStream(skuId, date)));
      if ('ok' in made) return made;
      ref = made;
    }
    const stream = inventoryStream(ref.skuId, ref.date);
    const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(stream, { type: 'set_total', total });
    if (reply.outcome === 'invalid_state') return fail('invalid_state', reply.message);
    if (reply.outcome === 'invalid_request') return fail('invalid_request', reply.message);
    if (reply.outcome === 'overloaded') return fail('overloaded', 'too many requests for this SKU/date; retry shortly');
    if (reply.outcome !== 'total_set') throw new Error(`unexpected reply to set_total: ${reply.outcome}`);
    // The answer's own numbers (durable with it), not a second ask: on a busy SKU/date that one
    // could be refused (503 for a change that was made) or report decisions not yet durable.
    const { total: t, reserved, sold } = reply;
    return { ok: true, value: { skuId, date, total: t, reserved, sold, available: t - reserved - sold } };
  }

  /** Why stock of this SKU/date may not be set (for `merchantId`, when a merchant asks), if it may not. */
  private stockRefusal(skuId: string, date: string, merchantId: string | undefined): Failure | undefined {
    const sku = this.catalog.sku(skuId);
    if (!sku) return fail('not_found', `unknown SKU ${skuId}`);
    // The message does not name the owner.
    if (merchantId !== undefined && sku.merchantId !== merchantId) return fail('forbidden', `SKU ${skuId} is not a SKU of merchant ${merchantId}`);
    // A card_key SKU's keys are one pool (its delivery actor's), counted into date `open` (API.md):
    // stock on another date would sell the same keys twice over and leave paid orders without any.
    if (sku.delivery === 'card_key' && date !== CARD_KEY_DATE) {
      return fail('invalid_state', `${skuId} sells card keys, which have one date: ${CARD_KEY_DATE}`);
    }
    return undefined;
  }

  /** Why card keys may not be added to this SKU (for `merchantId`, when a merchant asks), if they may not. */
  private cardKeysRefusal(skuId: string, merchantId: string | undefined): Failure | undefined {
    const sku = this.catalog.sku(skuId);
    if (!sku) return fail('not_found', `unknown SKU ${skuId}`);
    if (merchantId !== undefined && sku.merchantId !== merchantId) return fail('forbidden', `SKU ${skuId} is not a SKU of merchant ${merchantId}`);
    if (sku.delivery !== 'card_key') return fail('invalid_state', `${skuId} is delivered by ${sku.delivery}, not card keys`);
    return undefined;
  }

  /**
   * Stores card keys encrypted (duplicates within the SKU ignored) and grows the stock of the
   * SKU's `open` date by the number added. `merchantId`: the merchant asking (a merchant command),
   * refused `forbidden` unless the SKU is theirs when the keys are stored. The keys never reach an actor, an event or a log.
   * Uploads of one SKU run one after another (its checks of the stock's bound and its count, then
   * the keys stored: two at once near the bound could both pass and leave keys a refusal kept).
   */
  addCardKeys(skuId: string, keys: readonly string[], merchantId?: string): Promise<Result<{ added: number; total: number }>> {
    return this.uploads.run(skuId, () => this.addCardKeysNow(skuId, keys, merchantId));
  }

  /**
   * `each` over `items`, CARD_KEYS_PER_TURN of them per event-loop turn, one upload's slices at a time
   * on the node (the hashing and sealing of card keys).
   */
  private inSlices<T>(items: Iterable<T>, each: (item: T) => void): Promise<void> {
    return this.sealing.run(async () => {
      let n = 0;
      for (const item of items) {
        if (n++ % CARD_KEYS_PER_TURN === 0) await nextTurn();
        each(item);
      }
    });
  }

  private async addCardKeysNow(skuId: string, keys: readonly string[], merchantId: string | undefined): Promise<Result<{ added: number; total: number }>> {
    const refused = this.cardKeysRefusal(skuId, merchantId);
    if (refused) return refused;
    // Hashed and sealed a slice at a time, the event loop free in between, and one upload's slices at
    // a time on the node (uploads of other SKUs and merchants wait their turn): 10,000 keys are tens of
    // milliseconds of HMAC and AES-GCM, which every purchase on the node would otherwise wait behind.
    const unique = new Map<string, string>();
    await this.inSlices(keys, (key) => unique.set(this.cipher.hash(skuId, key), key));
    // Refused before a key is stored when even all of them new would take the stock past its bound
    // (a refused upload changes nothing): the count after the upload is at most `bound`.
    const bound = Math.min((await this.cardKeys.count(skuId)) + unique.size, INVENTORY_TOTAL_MAX + 1);
    if (this.catalog.stream(skuId, CARD_KEY_DATE)) {
      const probe = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(inventoryStream(skuId, CARD_KEY_DATE), { type: 'count_keys', keysTotal: Math.min(bound, INVENTORY_TOTAL_MAX), probe: true });
      if (probe.outcome === 'overloaded') return fail('overloaded', 'too many requests for this SKU/date; retry shortly');
      if (probe.outcome === 'invalid_request') return fail('invalid_request', probe.message);
    } else if (bound > INVENTORY_TOTAL_MAX) {
      return fail('invalid_request', `total would exceed ${INVENTORY_TOTAL_MAX}`);
    }
    const sealed: { hash: string; ciphertext: string }[] = [];
    await this.inSlices(unique, ([hash, key]) => sealed.push({ hash, ciphertext: this.cipher.encrypt(skuId, key) }));
    // The SKU may have changed while its keys were sealed (an admin made it another kind, or gave it
    // to another merchant): checked again in the SKU's change that stores them. Once stored they
    // count as stock, and no change of owner or kind can land any more (http/routes/admin.ts).
    const stored = await this.catalog.changeSku(skuId, async () => {
      const refusedNow = this.cardKeysRefusal(skuId, merchantId);
      if (refusedNow) return refusedNow;
      const added = await this.cardKeys.add(skuId, sealed);
      return { added, ref: await this.catalog.ensureStream(skuId, CARD_KEY_DATE) };
    });
    if ('ok' in stored) return stored;
    const { added, ref } = stored;
    const stream = inventoryStream(ref.skuId, ref.date);
    const total = await this.cardKeys.count(skuId);
    // Counted by the key total, not by `added`: an upload whose stock change failed (or its retry,
    // which adds nothing new) still brings the stock up to the keys stored.
    const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(stream, { type: 'count_keys', keysTotal: total });
    if (reply.outcome === 'overloaded') return fail('overloaded', 'too many requests for this SKU/date; retry shortly');
    if (reply.outcome === 'invalid_request') return fail('invalid_request', reply.message);
    // API.md: the stock grows by `added`. A retry of an upload whose stock change failed stores nothing
    // new (its keys were kept) but brings them into the stock now: answered with what the stock grew
    // by, not 0, which told the merchant its keys were duplicates.
    // At most this upload's own keys: another upload's, stored and not yet counted, are its to report.
    const grown = Math.max(added, Math.min(reply.outcome === 'total_set' ? (reply.counted ?? 0) : 0, unique.size));
    // Orders parked for want of keys are served now (the delivery actor also rechecks on a timer).
    if (grown > 0) this.delivery.tell(skuId, { type: 'keys_added' });
    return { ok: true, value: { added: grown, total } };
  }

  /** Keys of the SKU were counted into its stock (reconciliation): its orders parked for keys are served now. */
  keysCounted(skuId: string): void {
    this.delivery.tell(skuId, { type: 'keys_added' });
  }

  async stock(skuId: string, date: string): Promise<Result<StockView>> {
    const inspection = await this.inspect(skuId, date);
    if (!inspection.ok) return inspection;
    const { total, reserved, sold, available } = inspection.value;
    return { ok: true, value: { skuId, date, total, reserved, sold, available } };
  }

  async inspect(skuId: string, date: string): Promise<Result<InventoryInspection & { shard: number }>> {
    if (!this.catalog.stream(skuId, date)) return fail('not_found', `no stock for ${skuId} on ${date}`);
    const stream = inventoryStream(skuId, date);
    const inspection = await this.inventory.ask<InventoryInspection>(stream, { type: 'inspect' });
    return { ok: true, value: { ...inspection, shard: this.inventory.shardOf(stream) } };
  }

  /** The storefront's view: `available` may lag by up to a second (contract). */
  async skuView(skuId: string): Promise<Result<{ sku: Sku; onSale: boolean; dates: { date: string; available: number }[] }>> {
    const sku = this.catalog.sku(skuId);
    const now = this.clock.now();
    if (!sku || !isVisible(sku, now)) return fail('not_found', `unknown SKU ${skuId}`);
    const dates: { date: string; available: number }[] = [];
    for (const date of this.catalog.dates(skuId)) {
      const stream = inventoryStream(skuId, date);
      let available = this.availability.get(stream);
      if (available === undefined) {
        const inspection = await this.inventory.ask<InventoryInspection>(stream, { type: 'inspect' });
        available = inspection.available;
        this.availability.set(stream, available);
      }
      dates.push({ date, available });
    }
    return { ok: true, value: { sku, onSale: isOnSale(sku, now), dates } };
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Whether the SKU/date may know an order the read model has no row for: in memory, or being woken
   * after it was discarded holding work. One that passivated handed everything to the read model first
   * (InventoryActor.canPassivate), and one not woken since the start held neither a live reservation
   * nor an unprojected event (the start wakes those).
   */
  private mayHoldUnprojected(stream: string): boolean {
    return this.inventory.has(stream) || this.options.waking?.(stream) === true;
  }

  private streamOf(orderId: string): { stream: string; skuId: string; date: string } | undefined {
    const parsed = parseOrderId(orderId);
    const ref = parsed && this.catalog.streamByNo(parsed.streamNo);
    return ref ? { stream: ref.stream, skuId: ref.skuId, date: ref.date } : undefined;
  }

  /**
   * The freshest source first: a live order actor; else the read model (an order actor is never
   * passivated before its changes are projected); else, for a reservation, its inventory actor.
   */
  private async findOrder(orderId: string): Promise<OrderView | undefined> {
    const ref = this.streamOf(orderId);
    if (!ref) return undefined;
    if (this.orderActors.has(orderId)) {
      const reply = await this.orderActors.ask<OrderActorReply>(orderId, { type: 'get' });
      return reply.outcome === 'ok' ? fromState(reply.order) : undefined;
    }
    const row = await this.projection.order(orderId);
    if (row && row.status !== 'reserved') return row;
    // An id anyone can make up (a ULID and a SKU/date's number) must not wake a SKU/date, costing its
    // recovery and its mailbox: only one in memory (or being woken) can know an order the read model lacks.
    if (!this.mayHoldUnprojected(ref.stream)) return row ?? undefined;
    const live = await this.inventory.ask<LiveOrder | undefined>(ref.stream, { type: 'get_order', orderId });
    if (live) return Object.assign({}, live, { paymentId: live.paymentId ?? null, delivery: null });
    // Settled and projected between the two reads: the read model has it now.
    return (await this.projection.order(orderId)) ?? undefined;
  }

  private async deliveryBody(skuId: string, orderId: string, delivery: OrderDelivery): Promise<DeliveryBody> {
    switch (delivery.kind) {
      case 'card_key': {
        const sealed = await this.cardKeys.reveal(skuId, orderId, delivery.keyIds);
        return { cardKeys: sealed.map((k) => this.cipher.decrypt(skuId, k.ciphertext)) };
      }
      case 'ticket':
        return { payload: { tickets: delivery.codes } };
      case 'manual':
        return { payload: delivery.payload };
    }
  }
}

function fromState(o: OrderState): OrderView {
  const paid = o.history.find((h) => h.status === 'paid');
  return {
    orderId: o.orderId,
    userId: o.userId,
    skuId: o.skuId,
    date: o.date,
    qty: o.qty,
    amountCents: o.amountCents,
    status: o.status,
    createdAt: o.createdAt,
    expiresAt: o.expiresAt,
    paymentId: paid && paid.cause.startsWith('payment ') ? paid.cause.slice('payment '.length) : null,
    delivery: o.delivery ?? null,
  };
}

function answer(f: Failure): StoredAnswer {
  const body: Record<string, unknown> = { error: f.error, message: f.message };
  if (f.error === 'limit_exceeded') body.rule = f.rule;
  // API.md: an invalid_request has details (here the whole request: invalidRequest in http/api-error.ts).
  if (f.error === 'invalid_request') body.details = [{ path: [], message: f.message }];
  return { status: FAILURE_STATUS[f.error], body };
}

export const FAILURE_STATUS: Record<Failure['error'], number> = {
  not_found: 404,
  forbidden: 403,
  sold_out: 409,
  not_on_sale: 409,
  invalid_state: 409,
  invalid_request: 400,
  idempotency_key_reused: 422,
  overloaded: 503,
  limit_exceeded: 403,
};

export function isVisible(sku: Sku, now: number): boolean {
  return sku.visibleAt === null || Date.parse(sku.visibleAt) <= now;
}

export function isOnSale(sku: Sku, now: number): boolean {
  if (!isVisible(sku, now)) return false;
  if (sku.saleStartsAt !== null && Date.parse(sku.saleStartsAt) > now) return false;
  if (sku.saleEndsAt !== null && Date.parse(sku.saleEndsAt) <= now) return false;
  return true;
}

/** The answer to an order from its SKU/date's reply to the reserve (a module function: see OrderService.reserve). */
function reserveAnswer(reply: ReserveReply, p: PlaceOrder): StoredAnswer {
  switch (reply.outcome) {
    case 'reserved':
      return { status: 201, body: orderCreatedBody(reply.reservation, p.skuId, p.date) };
    case 'sold_out':
      return answer(fail('sold_out', SOLD_OUT_MESSAGE));
    case 'replay':
      return { status: reply.idempotency.status, body: reply.idempotency.body };
    case 'idempotency_key_reused':
      return answer(fail('idempotency_key_reused', 'this Idempotency-Key was used with another request'));
    case 'overloaded':
      return answer(fail('overloaded', 'too many requests for this SKU/date; retry shortly'));
    case 'invalid_request':
      return answer(fail('invalid_request', reply.message));
    default:
      throw new Error(`unexpected reply to reserve: ${reply.outcome}`);
  }
}

/** Whether a parsed JSON value holds a number that JSON.stringify turns into null (Infinity, NaN). */
function hasNonFiniteNumber(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (value === null || typeof value !== 'object') return false;
  for (const v of Array.isArray(value) ? value : Object.values(value)) if (hasNonFiniteNumber(v)) return true;
  return false;
}
