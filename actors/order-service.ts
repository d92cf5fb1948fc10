// The purchase path and everything else the edge asks of the engine, as business outcomes
// (values, not exceptions): placing, reading and cancelling orders, setting stock, reading live
// inventory. It routes each request to the inventory actor of its SKU/date; infrastructure
// failures surface as the runtime's and the stores' typed errors, mapped to 503s at the edge.

import {
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
  type RandomSource,
} from '../engine/index.ts';
import type { CardKeyCipher } from '../persistence/card-key-cipher.ts';
import type { CardKeyStore, IdempotencyRow, OrderHistoryRow, ProjectionStore, Sku } from '../persistence/ports.ts';
import type { Catalog } from './catalog.ts';
import type { InventoryInspection, InventoryMessage, LiveOrder, ReplayReply } from './inventory-actor.ts';
import { SOLD_OUT_MESSAGE } from './inventory-projection.ts';
import type { ActorKind } from './runtime/index.ts';

export type Failure =
  | { ok: false; error: 'not_found'; message: string }
  | { ok: false; error: 'sold_out'; message: string }
  | { ok: false; error: 'not_on_sale'; message: string }
  | { ok: false; error: 'invalid_state'; message: string }
  | { ok: false; error: 'invalid_request'; message: string }
  | { ok: false; error: 'idempotency_key_reused'; message: string }
  | { ok: false; error: 'overloaded'; message: string };

export type Result<T> = { ok: true; value: T } | Failure;

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
}

const fail = <E extends Failure['error']>(error: E, message: string) => ({ ok: false as const, error, message });

export class OrderService {
  /** Last known available count per stream; exact for passivated actors (nothing changes without them). */
  private readonly availability = new Map<string, number>();

  constructor(
    private readonly inventory: ActorKind<InventoryMessage>,
    private readonly catalog: Catalog,
    private readonly projection: ProjectionStore,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly options: OrderServiceOptions,
    private readonly cardKeys: CardKeyStore,
    private readonly cipher: CardKeyCipher,
  ) {}

  /** Called by inventory actors after each durable change. */
  noteAvailability(stream: string, available: number): void {
    this.availability.set(stream, available);
  }

  // ---- purchase path -------------------------------------------------------------------------

  /** 201-worthy order, or a business failure; the answer to store for an Idempotency-Key. */
  async placeOrder(p: PlaceOrder): Promise<StoredAnswer> {
    const sku = this.catalog.sku(p.skuId);
    const now = this.clock.now();
    if (!sku) return answer(fail('not_found', `unknown SKU ${p.skuId}`));
    // API.md: an SKU not (yet) visible is `not_on_sale` for an order (and 404 on its page).
    if (!isOnSale(sku, now)) return answer(fail('not_on_sale', `${p.skuId} is not on sale`));
    const stream = inventoryStream(p.skuId, p.date);
    const ref = this.catalog.streamOf(stream);
    if (!ref) return answer(fail('not_found', `no stock for ${p.skuId} on ${p.date}`));
    const command: InventoryCommand = {
      type: 'reserve',
      orderId: orderIdFor(now, this.random, ref.streamNo),
      userId: p.userId,
      qty: p.qty,
      unitPriceCents: sku.priceCents,
      ttl_ms: this.options.reservation_ttl_ms,
    };
    if (p.idempotency) command.idempotency = p.idempotency;
    const reply = await this.inventory.ask<InventoryReply | ReplayReply | { outcome: 'overloaded' }>(stream, command);
    switch (reply.outcome) {
      case 'reserved':
        return { status: 201, body: orderCreatedBody({ ...reply.reservation, skuId: p.skuId, date: p.date }) };
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

  /** The stored first answer of an Idempotency-Key, if it was already made durable and projected. */
  async storedAnswer(userId: string, key: string): Promise<(StoredAnswer & { requestHash: string; createdAt: number }) | undefined> {
    const row: IdempotencyRow | undefined = await this.projection.idempotency(userId, key);
    return row ? { status: row.status, body: row.body, requestHash: row.requestHash, createdAt: row.createdAt } : undefined;
  }

  async getOrder(orderId: string, userId: string | undefined): Promise<Result<OrderBody & { userId: string }>> {
    const order = await this.findOrder(orderId);
    if (!order || (userId !== undefined && order.userId !== userId)) return fail('not_found', `unknown order ${orderId}`);
    return { ok: true, value: { ...orderBody(order), userId: order.userId } };
  }

  async cancelOrder(orderId: string, userId: string): Promise<Result<OrderBody>> {
    const ref = this.streamOf(orderId);
    if (!ref) return fail('not_found', `unknown order ${orderId}`);
    const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(ref.stream, { type: 'cancel', orderId, userId });
    if (reply.outcome === 'overloaded') return fail('overloaded', 'too many requests for this SKU/date; retry shortly');
    if (reply.outcome === 'released') {
      return { ok: true, value: orderBody({ ...reply.reservation, skuId: ref.skuId, date: ref.date, status: 'cancelled' }) };
    }
    // Not a live reservation of this user: it is settled (or someone else's, or unknown).
    const order = await this.findOrder(orderId);
    if (!order || order.userId !== userId) return fail('not_found', `unknown order ${orderId}`);
    if (order.status === 'cancelled') return { ok: true, value: orderBody(order) };
    return fail('invalid_state', `order is ${order.status}; only a reserved order can be cancelled`);
  }

  async orderHistory(orderId: string): Promise<Result<OrderBody & { userId: string; history: Omit<OrderHistoryRow, 'orderId' | 'stream'>[] }>> {
    const order = await this.findOrder(orderId);
    if (!order) return fail('not_found', `unknown order ${orderId}`);
    const rows = await this.projection.history(orderId);
    // The read model records what happened after the reservation; the reservation itself is the order's start.
    const history = [
      { seq: 0, status: 'reserved' as const, at: order.createdAt, cause: 'created' },
      ...rows.filter((r) => r.status !== 'reserved').map(({ seq, status, at, cause }) => ({ seq, status, at, cause })),
    ];
    // The newest change may not be projected yet: the live actor knows it.
    if (history.length === 0 || history[history.length - 1]!.status !== order.status) {
      history.push({ seq: 0, status: order.status as OrderHistoryRow['status'], at: this.clock.now(), cause: 'live' });
    }
    return { ok: true, value: { ...orderBody(order), userId: order.userId, history } };
  }

  // ---- catalog and stock ---------------------------------------------------------------------

  async setStock(skuId: string, date: string, total: number): Promise<Result<StockView>> {
    if (!this.catalog.sku(skuId)) return fail('not_found', `unknown SKU ${skuId}`);
    const ref = await this.catalog.ensureStream(skuId, date);
    const stream = inventoryStream(ref.skuId, ref.date);
    const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(stream, { type: 'set_total', total });
    if (reply.outcome === 'invalid_state') return fail('invalid_state', reply.message);
    if (reply.outcome === 'invalid_request') return fail('invalid_request', reply.message);
    if (reply.outcome === 'overloaded') return fail('overloaded', 'too many requests for this SKU/date; retry shortly');
    return this.stock(skuId, date);
  }

  /**
   * Stores card keys encrypted (duplicates within the SKU ignored) and grows the stock of the
   * SKU's `open` date by the number added. The keys never reach an actor, an event or a log.
   */
  async addCardKeys(skuId: string, keys: readonly string[]): Promise<Result<{ added: number; total: number }>> {
    const sku = this.catalog.sku(skuId);
    if (!sku) return fail('not_found', `unknown SKU ${skuId}`);
    if (sku.delivery !== 'card_key') return fail('invalid_state', `${skuId} is delivered by ${sku.delivery}, not card keys`);
    const unique = new Map<string, string>();
    for (const key of keys) unique.set(this.cipher.hash(skuId, key), key);
    const sealed = [...unique].map(([hash, key]) => ({ hash, ciphertext: this.cipher.encrypt(skuId, key) }));
    const added = await this.cardKeys.add(skuId, sealed);
    const ref = await this.catalog.ensureStream(skuId, 'open');
    if (added > 0) {
      const reply = await this.inventory.ask<InventoryReply | { outcome: 'overloaded' }>(inventoryStream(ref.skuId, ref.date), { type: 'add_total', n: added });
      if (reply.outcome === 'overloaded') return fail('overloaded', 'too many requests for this SKU/date; retry shortly');
      if (reply.outcome === 'invalid_request') return fail('invalid_request', reply.message);
    }
    return { ok: true, value: { added, total: await this.cardKeys.count(skuId) } };
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

  private streamOf(orderId: string): { stream: string; skuId: string; date: string } | undefined {
    const parsed = parseOrderId(orderId);
    const ref = parsed && this.catalog.streamByNo(parsed.streamNo);
    return ref ? { stream: inventoryStream(ref.skuId, ref.date), skuId: ref.skuId, date: ref.date } : undefined;
  }

  /** The read model first; the live actor when the read model may be behind (reserved or missing). */
  private async findOrder(orderId: string): Promise<LiveOrder | undefined> {
    const ref = this.streamOf(orderId);
    if (!ref) return undefined;
    const row = await this.projection.order(orderId);
    if (row && row.status !== 'reserved') return row;
    const live = await this.inventory.ask<LiveOrder | undefined>(ref.stream, { type: 'get_order', orderId });
    if (live) return live;
    // Settled and projected between the two reads: the read model has it now.
    return (await this.projection.order(orderId)) ?? undefined;
  }
}

function answer(f: Failure): StoredAnswer {
  return { status: FAILURE_STATUS[f.error], body: { error: f.error, message: f.message } };
}

export const FAILURE_STATUS: Record<Failure['error'], number> = {
  not_found: 404,
  sold_out: 409,
  not_on_sale: 409,
  invalid_state: 409,
  invalid_request: 400,
  idempotency_key_reused: 422,
  overloaded: 503,
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
