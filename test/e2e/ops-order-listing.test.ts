// Proves GET /ops/orders?skuId&date pages a SKU/date's orders on embedded SQLite and on MariaDB + Redis:
// 2,500 orders read 1,000 at a time come back each exactly once in id order, while reserved and after pay,
// cancel or expiry, a delivered card-key order shows one delivery and its key ids but no key anywhere,
// bad queries and credentials are refused changing nothing, and a database lacking the listing's index
// gets it at the next start — all against a real node on a real port, the clock injected to expire.
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';
import { startEngine, type Answer, type Backend, type Client, type TestEngine } from '../support/engine.ts';
import { inParallel, until } from '../support/poll.ts';

/** The driver under MikroORM's SQLite package, loaded untyped (the project installs no types for it). */
const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string, opts?: { readonly?: boolean }) => {
  prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): unknown };
  close(): void;
};

const backends = [
  ['embedded SQLite', async (): Promise<Backend> => ({ kind: 'sqlite', dir: mkdtempSync(join(tmpdir(), 'stampede-listing-')) })],
  ['MariaDB + Redis', async (): Promise<Backend> => ({ kind: 'mysql', url: await freshMysqlDatabase('e2e_ops_order_listing'), redisUrl: REDIS_URL })],
] as const;

const TTL_MS = 60_000;
const BULK_DATE = '2026-12-10';
const OTHER_DATE = '2026-12-11';
const BULK_ORDERS = 2_500;
const INDEX_NAME = 'orders_stream_order_index';

interface Listed {
  orderId: string;
  userId: string;
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  status: string;
  createdAt: string;
  expiresAt: string;
  updatedAt: string;
  paymentId: string | null;
  deliveries: number;
  delivery?: { cardKeyIds: number[] } | { tickets: number } | { manual: true };
  visit?: unknown;
}

type ListingBody = { orders: Listed[]; next: string | null; error?: string; details?: unknown[] };

function listing(c: Client, query: string): Promise<Answer<ListingBody>> {
  return c.admin('GET', `/ops/orders?${query}`);
}

/** Every order of the SKU/date, page by page; fails on anything but 200 and on a page over `limit`. */
async function readAll(c: Client, skuId: string, date: string, limit: number): Promise<{ orders: Listed[]; pages: number }> {
  const orders: Listed[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const page = await listing(c, `skuId=${skuId}&date=${date}&limit=${limit}${after ? `&after=${after}` : ''}`);
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    expect(page.body.orders.length).toBeLessThanOrEqual(limit);
    orders.push(...page.body.orders);
    after = page.body.next;
    pages += 1;
    if (after !== null) expect(after).toBe(page.body.orders[page.body.orders.length - 1]!.orderId);
  } while (after !== null && pages < 100);
  return { orders, pages };
}

async function hasListingIndex(backend: Backend): Promise<boolean> {
  if (backend.kind === 'sqlite') {
    const db = new Database(join(backend.dir!, 'stampede.sqlite'), { readonly: true });
    try {
      return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").all(INDEX_NAME).length === 1;
    } finally {
      db.close();
    }
  }
  const conn = await mysql.createConnection(backend.url);
  try {
    const [rows] = await conn.query('SELECT column_name AS c FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ? ORDER BY seq_in_index', ['orders', INDEX_NAME]);
    return (rows as { c: string }[]).map((r) => r.c).join(',') === 'stream,order_id';
  } finally {
    await conn.end();
  }
}

/** What an engine of the version before this index left behind. */
async function dropListingIndex(backend: Backend): Promise<void> {
  if (backend.kind === 'sqlite') {
    const db = new Database(join(backend.dir!, 'stampede.sqlite'));
    try {
      db.prepare(`DROP INDEX ${INDEX_NAME}`).run();
    } finally {
      db.close();
    }
    return;
  }
  const conn = await mysql.createConnection(backend.url);
  try {
    await conn.query(`DROP INDEX ${INDEX_NAME} ON orders`);
  } finally {
    await conn.end();
  }
}

describe.each(backends)('ops order listing on %s', (_name, makeBackend) => {
  let backend: Backend;
  let e: TestEngine;
  const clock = new ManualClock(Date.now());
  const bulkIds: string[] = [];
  const paid = new Map<string, string>();
  const cancelled = new Set<string>();

  beforeAll(async () => {
    backend = await makeBackend();
    e = await startEngine(backend, { STAMPEDE_RESERVATION_TTL_MS: String(TTL_MS) }, clock);
  });
  afterAll(async () => e?.stop());

  it('pages 2,500 orders 1,000 at a time: each exactly once, in id order, with its status after pay, cancel or expiry', async () => {
    const c = e.client;
    await c.sku('bulk', BULK_DATE, 10_000);
    const stock = await c.admin('PUT', `/v1/skus/bulk/stock/${OTHER_DATE}`, { total: 10 });
    expect(stock.status).toBe(200);
    const placed = await inParallel(Array.from({ length: BULK_ORDERS }, (_, i) => i), 50, (i) =>
      c.buyer(`bulk-buyer-${i % 50}`, 'POST', '/v1/orders', { skuId: 'bulk', date: BULK_DATE, qty: 1 + (i % 3) }),
    );
    expect(placed.filter((a) => a.status !== 201).map((a) => a.body)).toEqual([]);
    bulkIds.push(...placed.map((a) => a.body.orderId as string));
    const qtyOf = new Map(placed.map((a) => [a.body.orderId as string, a.body.qty as number]));
    const others = await Promise.all([1, 2, 3].map((i) => c.buyer(`other-${i}`, 'POST', '/v1/orders', { skuId: 'bulk', date: OTHER_DATE, qty: 1 })));
    expect(others.map((a) => a.status)).toEqual([201, 201, 201]);

    // Live reservations are listed too (from the SKU/date's actor: the read model has only settled orders).
    const live = await readAll(c, 'bulk', BULK_DATE, 1_000);
    expect(live.pages).toBe(3);
    expect(live.orders.map((o) => o.orderId)).toEqual([...bulkIds].sort());
    expect(live.orders.every((o) => o.status === 'reserved' && o.deliveries === 0 && o.paymentId === null)).toBe(true);
    expect(live.orders.reduce((n, o) => n + o.qty, 0)).toBe((await c.admin('GET', `/ops/inventory/bulk/${BULK_DATE}`)).body.reserved);

    // Five paid (tickets, so delivered), five cancelled, the rest expired by moving the clock past the TTL.
    for (const [i, a] of placed.slice(0, 5).entries()) {
      const paymentId = `pi_listing_${i}`;
      const r = await c.pay({ orderId: a.body.orderId, paymentId, amountCents: a.body.amountCents, status: 'succeeded' });
      expect(r.status).toBe(200);
      paid.set(a.body.orderId, paymentId);
    }
    for (const [i, a] of placed.slice(5, 10).entries()) {
      const r = await c.buyer(`bulk-buyer-${(5 + i) % 50}`, 'POST', `/v1/orders/${a.body.orderId}/cancel`);
      expect(r.status).toBe(200);
      cancelled.add(a.body.orderId);
    }
    clock.advance(TTL_MS + 1_000);
    const settled = (o: Listed) => (paid.has(o.orderId) ? o.status === 'delivered' : cancelled.has(o.orderId) ? o.status === 'cancelled' : o.status === 'expired');
    await until(
      'every bulk order settled in the read model',
      () => readAll(c, 'bulk', BULK_DATE, 5_000),
      (r) => r.orders.length === BULK_ORDERS && r.orders.every(settled),
      60_000,
      200,
    );

    const { orders, pages } = await readAll(c, 'bulk', BULK_DATE, 1_000);
    expect(pages).toBe(3);
    const ids = orders.map((o) => o.orderId);
    expect(new Set(ids).size).toBe(BULK_ORDERS);
    expect(ids).toEqual([...bulkIds].sort());
    for (let i = 1; i < ids.length; i++) expect(ids[i - 1]! < ids[i]!).toBe(true);
    for (const o of orders) {
      expect(o).toMatchObject({ skuId: 'bulk', date: BULK_DATE, qty: qtyOf.get(o.orderId), amountCents: 1999 * qtyOf.get(o.orderId)! });
      expect(o.userId).toMatch(/^bulk-buyer-\d+$/);
      for (const t of [o.createdAt, o.expiresAt, o.updatedAt]) expect(new Date(t).toISOString()).toBe(t);
      if (paid.has(o.orderId)) {
        expect(o).toMatchObject({ status: 'delivered', paymentId: paid.get(o.orderId), deliveries: 1, delivery: { tickets: o.qty } });
      } else {
        expect(o).toMatchObject({ status: cancelled.has(o.orderId) ? 'cancelled' : 'expired', paymentId: null, deliveries: 0 });
        expect(o.delivery).toBeUndefined();
      }
    }
    // No ticket code leaves through the listing: the owner's GET has them, the listing only their count.
    const [ticketOrder] = paid.keys();
    const owner = placed.findIndex((a) => a.body.orderId === ticketOrder);
    const mine = await c.buyer(`bulk-buyer-${owner % 50}`, 'GET', `/v1/orders/${ticketOrder}`);
    const codes: string[] = mine.body.delivery.payload.tickets;
    expect(codes.length).toBeGreaterThan(0);
    const everything = JSON.stringify(orders);
    for (const code of codes) expect(everything).not.toContain(code);

    // A whole sale in one page; after the last id nothing; the other date only its own three.
    const one = await listing(c, `skuId=bulk&date=${BULK_DATE}&limit=5000`);
    expect(one.body.orders).toHaveLength(BULK_ORDERS);
    expect(one.body.next).toBeNull();
    const defaults = await listing(c, `skuId=bulk&date=${BULK_DATE}`);
    expect(defaults.body.orders.map((o) => o.orderId)).toEqual(ids.slice(0, 1_000));
    expect(defaults.body.next).toBe(ids[999]);
    expect((await listing(c, `skuId=bulk&date=${BULK_DATE}&after=${ids[ids.length - 1]}`)).body).toEqual({ orders: [], next: null });
    const exact = await listing(c, `skuId=bulk&date=${BULK_DATE}&after=${ids[ids.length - 3]}&limit=2`);
    expect(exact.body).toMatchObject({ next: null });
    expect(exact.body.orders.map((o) => o.orderId)).toEqual(ids.slice(-2));
    const other = await until('the other date expired', () => readAll(c, 'bulk', OTHER_DATE, 2), (r) => r.orders.length === 3 && r.orders.every((o) => o.status === 'expired'));
    expect(other.orders.map((o) => o.orderId).sort()).toEqual(others.map((a) => a.body.orderId).sort());
  });

  it('shows a delivered card-key order with one delivery and its key ids, never a key, even after a repeated payment', async () => {
    const c = e.client;
    const put = await c.admin('PUT', '/v1/skus/keys', { name: 'Key Pack', priceCents: 500, merchantId: 'm-keys', delivery: 'card_key' });
    expect(put.status).toBe(200);
    const keys = Array.from({ length: 5 }, (_, i) => `SECRET-KEY-${i}-${Math.random().toString(36).slice(2)}`);
    expect((await c.admin('POST', '/v1/skus/keys/card-keys', { keys })).status).toBe(200);
    const order = await c.buyer('key-buyer', 'POST', '/v1/orders', { skuId: 'keys', date: 'open', qty: 3 });
    expect(order.status).toBe(201);
    const orderId: string = order.body.orderId;
    const payment = { orderId, paymentId: 'pi_keys_1', amountCents: 1500, status: 'succeeded' as const };
    expect((await c.pay(payment)).status).toBe(200);
    const delivered = await until(
      'the card-key order delivered in the read model',
      () => listing(c, 'skuId=keys&date=open'),
      (a) => a.body.orders?.[0]?.status === 'delivered',
    );
    // A repeated callback delivers nothing again.
    expect((await c.pay(payment)).status).toBe(200);
    const again = await listing(c, 'skuId=keys&date=open');
    for (const a of [delivered, again]) {
      expect(a.body.next).toBeNull();
      expect(a.body.orders).toHaveLength(1);
      const o = a.body.orders[0]!;
      expect(o).toMatchObject({ orderId, userId: 'key-buyer', qty: 3, amountCents: 1500, status: 'delivered', paymentId: 'pi_keys_1', deliveries: 1 });
      const ids = (o.delivery as { cardKeyIds: number[] }).cardKeyIds;
      expect(ids).toHaveLength(3);
      expect(new Set(ids).size).toBe(3);
      expect(ids.every((id) => Number.isSafeInteger(id))).toBe(true);
    }
    // The owner sees three of the keys; the listing names none of the five, in any field.
    const mine = await c.buyer('key-buyer', 'GET', `/v1/orders/${orderId}`);
    expect(mine.body.delivery.cardKeys).toHaveLength(3);
    for (const a of [delivered, again]) {
      const text = JSON.stringify(a.body);
      for (const key of keys) expect(text).not.toContain(key);
      expect(text).not.toContain('SECRET-KEY');
    }
    // The single-order route next to the listing still answers.
    const single = await c.admin('GET', `/ops/orders/${orderId}`);
    expect(single.status).toBe(200);
    expect(single.body).toMatchObject({ orderId, status: 'delivered' });
  });

  it('refuses bad queries with 400 invalid_request, unknown SKUs and dates with 404, and changes nothing', async () => {
    const c = e.client;
    const before = await readAll(c, 'bulk', BULK_DATE, 5_000);
    const inventory = await c.admin('GET', `/ops/inventory/bulk/${BULK_DATE}`);
    const bad = [
      '',
      `date=${BULK_DATE}`,
      'skuId=bulk',
      'skuId=bulk&date=2026-02-30',
      'skuId=bulk&date=tomorrow',
      'skuId=bu%20lk&date=open',
      `skuId=bulk&skuId=keys&date=${BULK_DATE}`,
      `skuId=bulk&date=${BULK_DATE}&limit=0`,
      `skuId=bulk&date=${BULK_DATE}&limit=5001`,
      `skuId=bulk&date=${BULK_DATE}&limit=-1`,
      `skuId=bulk&date=${BULK_DATE}&limit=1e3`,
      `skuId=bulk&date=${BULK_DATE}&limit=10.5`,
      `skuId=bulk&date=${BULK_DATE}&limit=abc`,
      `skuId=bulk&date=${BULK_DATE}&limit=`,
      `skuId=bulk&date=${BULK_DATE}&limit=99999999999999999999`,
      `skuId=bulk&date=${BULK_DATE}&after=`,
      `skuId=bulk&date=${BULK_DATE}&after=not%2Fan%2Fid`,
      `skuId=bulk&date=${BULK_DATE}&after=${'x'.repeat(65)}`,
    ];
    for (const query of bad) {
      const a = await listing(c, query);
      expect(a.status, query).toBe(400);
      expect(a.body.error, query).toBe('invalid_request');
      expect(Array.isArray(a.body.details), query).toBe(true);
    }
    for (const query of ['skuId=nope&date=open', 'skuId=bulk&date=2030-01-01']) {
      const a = await listing(c, query);
      expect(a.status, query).toBe(404);
      expect(a.body.error, query).toBe('not_found');
    }
    expect(await readAll(c, 'bulk', BULK_DATE, 5_000)).toEqual(before);
    expect((await c.admin('GET', `/ops/inventory/bulk/${BULK_DATE}`)).body).toMatchObject({
      total: inventory.body.total,
      reserved: inventory.body.reserved,
      sold: inventory.body.sold,
      journalSeq: inventory.body.journalSeq,
    });
  });

  it('answers a buyer token with 403 and a missing or wrong token with 401', async () => {
    const c = e.client;
    const path = `/ops/orders?skuId=bulk&date=${BULK_DATE}`;
    const buyer = await c.buyer('bulk-buyer-1', 'GET', path);
    expect(buyer.status).toBe(403);
    expect(buyer.body.error).toBe('forbidden');
    for (const auth of [undefined, 'not-the-admin-token']) {
      const a = await c.request('GET', path, auth ? { auth } : {});
      expect(a.status).toBe(401);
      expect(a.body.error).toBe('unauthorized');
    }
  });

  it("shows the SKU's merchantId on its public page", async () => {
    const page = await e.client.request('GET', '/v1/skus/keys');
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ skuId: 'keys', merchantId: 'm-keys', delivery: 'card_key' });
  });

  it('creates the listing index on a database made without it, and lists the same orders after the restart', async () => {
    expect(await hasListingIndex(backend)).toBe(true);
    const before = await readAll(e.client, 'bulk', BULK_DATE, 1_000);
    await e.stop();
    await dropListingIndex(backend);
    expect(await hasListingIndex(backend)).toBe(false);
    e = await startEngine(backend, { STAMPEDE_RESERVATION_TTL_MS: String(TTL_MS) }, clock);
    expect(await hasListingIndex(backend)).toBe(true);
    expect(await readAll(e.client, 'bulk', BULK_DATE, 1_000)).toEqual(before);
  });
});
