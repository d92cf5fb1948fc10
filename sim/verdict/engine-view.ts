// What the engine says after a run, read through its own routes with the admin token: the live
// inventory of each SKU/date, every order of those SKU/dates (the paginated ops listing), the
// purchase rules and the SKUs' rule dimensions. The verdict compares this with the answers the run
// got; it never reads the engine's database behind its back.
import type { OrderStatus, Rule } from '../../engine/index.ts';
import type { Credentials, SimSecrets } from '../replay/credentials.ts';
import type { SimAnswer, Transport } from '../replay/transport.ts';
import { inParallel } from '../../actors/in-parallel.ts';

export interface InventoryFigures {
  total: number;
  reserved: number;
  sold: number;
  available: number;
}

/** An order as `GET /ops/orders?skuId&date` lists it. */
export interface ListedOrder {
  orderId: string;
  userId: string;
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  status: OrderStatus;
  createdAt: string;
  expiresAt: string;
  updatedAt: string;
  paymentId: string | null;
  /** How many times the order's history says it was delivered. */
  deliveries: number;
  delivery?: { cardKeyIds: number[] } | { tickets: number } | { manual: true };
  /** A delivered ticket order redeemed, or counted a no-show once its date ended. */
  visit?: { kind: 'redeemed' | 'no_show'; at: string };
  /**
   * When it stopped holding stock and rule usage (its cancel or expiry), read from its history for
   * a refund_required order: its `updatedAt` is the late payment's, later than that.
   */
  endedAt?: string;
}

/** When an order that no longer holds stock let it go (ms since the epoch). */
export function releasedAt(o: ListedOrder): number {
  return Date.parse(o.endedAt ?? o.updatedAt);
}

export interface SkuFacts {
  skuId: string;
  delivery: 'card_key' | 'ticket' | 'manual';
  merchantId: string;
  attributes: Record<string, string>;
  /** The price of one unit as the engine answers it now. */
  priceCents: number;
}

export interface EngineView {
  /** Wall-clock time (ms since the epoch) the view was read. */
  read_at_ms: number;
  /** By `<skuId>/<date>`. */
  inventory: Map<string, InventoryFigures>;
  orders: Map<string, ListedOrder>;
  rules: Rule[];
  skus: Map<string, SkuFacts>;
  /** What could not be read (each a sentence); the verdict fails when anything is missing. */
  unreadable: string[];
  /**
   * SKU/dates the traffic named that the engine does not have (the ops route answered 404 for one
   * nothing of the run showed to exist: an order for an unknown SKU, refused): nothing to read.
   */
  absent?: string[];
  /**
   * What the buyer of each delivered card-key or ticket order is shown (GET /v1/orders/{orderId} as its
   * owner), by order id; read once the engine has settled (readGoods). Absent: not read.
   */
  goods?: Map<string, DeliveredGoods>;
}

/** A delivered order as its buyer sees it: the card keys or ticket codes shown, or why it could not be read. */
export type DeliveredGoods = { items: string[] } | { unreadable: string };

/** Delivered orders read at once by readGoods. */
const GOODS_READS_IN_FLIGHT = 32;
/**
 * A read answered 503 (the engine shedding load) or 429 (a target limiting each buyer's requests) is
 * tried this many times in all, first this far apart, doubling (~6 s in all).
 */
const GOODS_READ_ATTEMPTS = 6;
const GOODS_RETRY_MS = 200;

/** Orders per page of the listing (the route's maximum). */
const LISTING_PAGE_MAX = 5_000;

export function stockKey(skuId: string, date: string): string {
  return `${skuId}/${date}`;
}

export class EngineReader {
  constructor(
    private readonly transport: Transport,
    private readonly secrets: SimSecrets,
  ) {}

  /** A request of the current read() got no answer (the engine died or stalled): the rest of it is not sent. */
  private failure: string | undefined;
  private reading = false;

  /** Why the last read() took the engine for gone (a request got no answer), if it did. */
  get unanswered(): string | undefined {
    return this.failure;
  }

  /**
   * A GET as admin. A request that got no answer (the engine died, stalled past the transport's
   * timeout) is status 0, never a throw: the verdict then fails its "engine state readable" check and
   * the run still prints its table and reports. Within one read() no request is sent after such a
   * one (each would wait for its own timeout on a dead engine); the next read() tries again.
   */
  async get(path: string): Promise<SimAnswer> {
    if (this.reading && this.failure !== undefined) return { status: 0, body: { error: 'no_answer', message: this.failure } };
    try {
      return await this.transport.send({ method: 'GET', path, headers: { authorization: `Bearer ${this.secrets.adminToken}` } });
    } catch (error) {
      const message = `the engine did not answer GET ${path}: ${error instanceof Error ? error.message : String(error)}`;
      if (this.reading) this.failure = message;
      return { status: 0, body: { error: 'no_answer', message } };
    }
  }

  async inventory(skuId: string, date: string): Promise<InventoryFigures | undefined> {
    const figures = await this.inventoryAnswer(skuId, date);
    return typeof figures === 'number' ? undefined : figures;
  }

  /** The live figures of a SKU/date, or the status the ops route answered instead. */
  private async inventoryAnswer(skuId: string, date: string): Promise<InventoryFigures | number> {
    const a = await this.get(`/ops/inventory/${encodeURIComponent(skuId)}/${encodeURIComponent(date)}`);
    if (a.status !== 200) return a.status;
    const b = a.body as InventoryFigures;
    return { total: b.total, reserved: b.reserved, sold: b.sold, available: b.available };
  }

  async ordersOf(skuId: string, date: string): Promise<ListedOrder[] | string> {
    const out: ListedOrder[] = [];
    let after: string | null = '';
    while (after !== null) {
      const query = new URLSearchParams({ skuId, date, limit: String(LISTING_PAGE_MAX) });
      if (after !== '') query.set('after', after);
      const a = await this.get(`/ops/orders?${query.toString()}`);
      if (a.status !== 200) return `listing the orders of ${skuId}/${date} answered ${a.status} ${JSON.stringify(a.body)}`;
      const page = a.body as { orders: ListedOrder[]; next: string | null };
      for (const o of page.orders) out.push(o);
      // A cursor that does not move on would page for ever (and keep every page).
      if (page.next !== null && (typeof page.next !== 'string' || (after !== '' && page.next <= after))) {
        return `listing the orders of ${skuId}/${date}: its next cursor ${JSON.stringify(page.next)} does not move past ${JSON.stringify(after)}`;
      }
      after = page.next;
    }
    return out;
  }

  /**
   * What each delivered card-key or ticket order's buyer is shown, read as that buyer (`credentials`:
   * tokens minted on the engine's clock, which a run may have moved on). The ops listing gives key ids
   * and counts only: a key stored twice under two ids, a key decrypted wrong, or one ticket code given
   * to two orders shows only here. The strings are kept for the verdict, never printed.
   */
  async readGoods(view: EngineView, credentials: Credentials): Promise<Map<string, DeliveredGoods>> {
    const goods = new Map<string, DeliveredGoods>();
    const delivered = [...view.orders.values()].filter((o) => {
      const delivery = view.skus.get(o.skuId)?.delivery;
      return o.status === 'delivered' && (delivery === 'card_key' || delivery === 'ticket');
    });
    const readOne = async (o: ListedOrder): Promise<DeliveredGoods> => {
      let a: SimAnswer = { status: 0, body: undefined };
      for (let attempt = 1; attempt <= GOODS_READ_ATTEMPTS; attempt++) {
        try {
          a = await this.transport.send({ method: 'GET', path: `/v1/orders/${encodeURIComponent(o.orderId)}`, headers: { authorization: `Bearer ${credentials.buyerToken(o.userId)}` } });
        } catch (error) {
          return { unreadable: `${o.orderId} could not be read as its buyer: ${error instanceof Error ? error.message : String(error)}` };
        }
        if ((a.status !== 503 && a.status !== 429) || attempt === GOODS_READ_ATTEMPTS) break;
        await new Promise((resolve) => setTimeout(resolve, GOODS_RETRY_MS * 2 ** (attempt - 1)));
      }
      if (a.status !== 200) return { unreadable: `${o.orderId} is listed delivered, but its buyer's GET answered ${a.status}` };
      const body = a.body as { status?: unknown; delivery?: { cardKeys?: unknown; payload?: { tickets?: unknown } } } | undefined;
      if (body?.status !== 'delivered') return { unreadable: `${o.orderId} is listed delivered, but its buyer is shown it ${String(body?.status)}` };
      const items = body.delivery?.cardKeys ?? body.delivery?.payload?.tickets;
      if (!Array.isArray(items) || !items.every((i): i is string => typeof i === 'string')) return { unreadable: `${o.orderId} is delivered, but its buyer is shown no list of card keys or ticket codes` };
      return { items };
    };
    await inParallel(delivered, GOODS_READS_IN_FLIGHT, async (o) => {
      goods.set(o.orderId, await readOne(o));
    });
    return goods;
  }

  /** The time of an order's cancel or expiry, from its history (GET /ops/orders/{orderId}). */
  async endOf(orderId: string): Promise<string | undefined> {
    const a = await this.get(`/ops/orders/${encodeURIComponent(orderId)}`);
    if (a.status !== 200) return undefined;
    const history = (a.body as { history?: { status: string; at: string }[] }).history ?? [];
    return history.find((h) => h.status === 'cancelled' || h.status === 'expired')?.at;
  }

  /**
   * Reads the SKU/dates `stock`. Those in `existing` (default: all) the engine must have; any other
   * may never have existed (the traffic named it, the engine refused it), and a 404 for it (or a 400:
   * an id or date the engine refuses as malformed) is no failure: it is listed in `absent`, and so is its SKU when no order of it is listed.
   */
  async read(stock: readonly { skuId: string; date: string }[], existing?: ReadonlySet<string>): Promise<EngineView> {
    this.failure = undefined;
    this.reading = true;
    try {
      const view = await this.readAll(stock, existing);
      if (this.failure !== undefined) view.unreadable.unshift(this.failure);
      return view;
    } finally {
      this.reading = false;
    }
  }

  private async readAll(stock: readonly { skuId: string; date: string }[], existing?: ReadonlySet<string>): Promise<EngineView> {
    const view: EngineView = { read_at_ms: Date.now(), inventory: new Map(), orders: new Map(), rules: [], skus: new Map(), unreadable: [], absent: [] };
    for (const { skuId, date } of stock) {
      const key = stockKey(skuId, date);
      const figures = await this.inventoryAnswer(skuId, date);
      if (typeof figures !== 'number') view.inventory.set(key, figures);
      // 400: the engine refuses the SKU id or date as malformed (it answered the traffic's orders 400 too).
      else if ((figures === 404 || figures === 400) && existing !== undefined && !existing.has(key)) {
        view.absent!.push(key);
        continue;
      } else view.unreadable.push(`the inventory of ${key} could not be read (${figures})`);
      const orders = await this.ordersOf(skuId, date);
      if (typeof orders === 'string') view.unreadable.push(orders);
      else for (const o of orders) view.orders.set(o.orderId, o);
    }
    for (const o of view.orders.values()) {
      if (o.status !== 'refund_required') continue;
      const ended = await this.endOf(o.orderId);
      if (ended === undefined) view.unreadable.push(`the history of ${o.orderId} could not be read`);
      else o.endedAt = ended;
    }
    const rules = await this.get('/v1/limit-rules');
    if (rules.status === 200 && Array.isArray(rules.body)) view.rules = rules.body as Rule[];
    else view.unreadable.push(`the purchase rules could not be read (${rules.status})`);
    // A SKU's delivery and rule dimensions are needed for its orders. One without orders may not exist,
    // or not be visible yet (the public route answers 404 for both).
    const ordered = new Set([...view.orders.values()].map((o) => o.skuId));
    for (const skuId of new Set(stock.map((s) => s.skuId))) {
      const a = await this.get(`/v1/skus/${encodeURIComponent(skuId)}`);
      if ((a.status === 404 || a.status === 400) && existing !== undefined && !ordered.has(skuId)) continue;
      if (a.status !== 200) {
        view.unreadable.push(`SKU ${skuId} could not be read (${a.status})`);
        continue;
      }
      const b = a.body as SkuFacts;
      view.skus.set(skuId, { skuId, delivery: b.delivery, merchantId: b.merchantId, attributes: b.attributes ?? {}, priceCents: b.priceCents });
    }
    return view;
  }
}
