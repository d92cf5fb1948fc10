// Proves a SIGKILL between paid and delivered neither loses nor repeats a delivery: a child engine on MariaDB + Redis + a NATS server of the test's own is killed (a) with card-key orders parked on an empty pool and again while the uploaded keys are being handed out, and (b) while a storm of ticket payment callbacks is being delivered; after each restart every paid order ends delivered exactly once — qty distinct keys or codes that never change (a key assigned before the crash stays with its order), one `delivered` line in its history, one `order.delivered` event in its journal stream `@o/<orderId>`.
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';
import { Client, type Answer, type Backend } from '../support/engine.ts';
import { OwnNatsServer } from '../support/nats-server.ts';
import { sampleValue } from '../support/metrics.ts';
import { inParallel, until } from '../support/poll.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';

/** Our own Redis db: no snapshot of an earlier run may stand in for this run's streams. */
const REDIS_DB_URL = `${REDIS_URL}/9`;

/** `order.delivered` events per order, from the durable journal (the order streams `@o/<orderId>`). */
async function deliveredEventsPerOrder(dbUrl: string): Promise<Map<string, number>> {
  const conn = await mysql.createConnection(dbUrl);
  try {
    const [rows] = await conn.query("SELECT stream, events FROM journal WHERE stream LIKE '@o/%' ORDER BY stream, seq");
    const counts = new Map<string, number>();
    for (const row of rows as { stream: string; events: Buffer }[]) {
      const orderId = row.stream.slice('@o/'.length);
      const events = JSON.parse(row.events.toString('utf8')) as { type: string }[];
      counts.set(orderId, (counts.get(orderId) ?? 0) + events.filter((e) => e.type === 'order.delivered').length);
    }
    return counts;
  } finally {
    await conn.end();
  }
}

/** Card-key row id -> the order it is assigned to, for the assigned keys of a SKU. */
async function keyAssignments(dbUrl: string, skuId: string): Promise<Map<number, string>> {
  const conn = await mysql.createConnection(dbUrl);
  try {
    const [rows] = await conn.query('SELECT id, order_id FROM card_keys WHERE sku_id = ? AND order_id IS NOT NULL', [skuId]);
    return new Map((rows as { id: number; order_id: string }[]).map((r) => [Number(r.id), r.order_id]));
  } finally {
    await conn.end();
  }
}

/** A payment callback that may meet a dead engine: undefined when the connection failed. */
async function tryPay(c: Client, orderId: string, amountCents: number): Promise<Answer | undefined> {
  try {
    return await c.pay({ orderId, paymentId: `pay-${orderId}`, amountCents, status: 'succeeded' });
  } catch {
    return undefined;
  }
}

describe('delivery across a SIGKILL on MariaDB + Redis + NATS (child engine)', () => {
  let nats: OwnNatsServer;
  let dbUrl: string;
  let backend: Backend;
  let engine: ChildEngine | undefined;
  let c: Client;
  // No periodic reconciliation: the restart itself (re-driven paid orders, the bus's redelivery) must deliver.
  const env = () => ({ STAMPEDE_NATS_URL: nats.url, STAMPEDE_RESERVATION_TTL_MS: '600000', STAMPEDE_RECONCILE_INTERVAL_MS: '0' });

  async function start(): Promise<void> {
    engine = await startChildEngine(backend, env());
    c = new Client(engine.url);
  }
  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await engine?.kill(signal);
    engine = undefined;
  }
  const metric = async (name: string, labels: Record<string, string>) => sampleValue((await c.admin('GET', '/metrics')).body as string, name, labels);

  beforeAll(async () => {
    const redis = new Redis(REDIS_DB_URL);
    await redis.flushdb();
    redis.disconnect();
    nats = await OwnNatsServer.start();
    dbUrl = await freshMysqlDatabase('e2e_delivery_crash');
    backend = { kind: 'mysql', url: dbUrl, redisUrl: REDIS_DB_URL };
    await start();
  });
  afterAll(async () => {
    await kill('SIGKILL');
    await nats?.dispose();
  });

  it('card keys: orders parked on an empty pool survive a SIGKILL, and a second SIGKILL mid-hand-out, each getting qty distinct keys once', async () => {
    const ORDERS = 150;
    const qtyOf = (i: number) => 1 + (i % 2);
    const units = Array.from({ length: ORDERS }, (_, i) => qtyOf(i)).reduce((a, b) => a + b, 0);
    expect((await c.admin('PUT', '/v1/skus/ck-crash', { name: 'Key', priceCents: 500, merchantId: 'm1', delivery: 'card_key' })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/ck-crash/stock/open', { total: units })).status).toBe(200);
    const orders = await inParallel(Array.from({ length: ORDERS }, (_, i) => i), 32, async (i) => {
      const user = `ck-u${i}`;
      const o = await c.buyer(user, 'POST', '/v1/orders', { skuId: 'ck-crash', date: 'open', qty: qtyOf(i) });
      expect(o.status).toBe(201);
      const p = await c.pay({ orderId: o.body.orderId, paymentId: `pay-${o.body.orderId}`, amountCents: o.body.amountCents, status: 'succeeded' });
      expect(p.body).toEqual({ orderId: o.body.orderId, status: 'paid' });
      return { id: o.body.orderId as string, user, qty: qtyOf(i) };
    });
    // Every order reached delivery over the bus and was parked: the pool is empty.
    await until('all orders parked', () => metric('stampede_deliveries_total', { outcome: 'awaiting_card_keys' }), (n) => n >= ORDERS);
    const parked = await inParallel(orders, 32, (o) => c.buyer(o.user, 'GET', `/v1/orders/${o.id}`));
    for (const v of parked) expect(v.body).toMatchObject({ status: 'paid', awaitingDelivery: true });

    await kill('SIGKILL');
    await start();

    // Keys arrive after the restart: the parked orders (in memory only before the crash) are served.
    const keys = Array.from({ length: units }, (_, i) => `CK-${i}-${Math.random().toString(36).slice(2)}`);
    expect((await c.admin('POST', '/v1/skus/ck-crash/card-keys', { keys })).body).toEqual({ added: units, total: units });
    // SIGKILL again as soon as the first order is delivered: the rest of the hand-out is in flight.
    await until('the first card-key delivery', () => metric('stampede_deliveries_total', { outcome: 'delivered' }), (n) => n > 0, 20_000, 5);
    await kill('SIGKILL');
    // What the crash left: some orders delivered, others holding keys without `order.delivered` yet.
    const deliveredAtKill = [...(await deliveredEventsPerOrder(dbUrl)).values()].filter((n) => n > 0).length;
    const assignedAtKill = await keyAssignments(dbUrl, 'ck-crash');
    expect(deliveredAtKill).toBeGreaterThan(0);
    expect(new Set(assignedAtKill.values()).size).toBeGreaterThanOrEqual(deliveredAtKill);
    await start();

    const read = () => inParallel(orders, 32, (o) => c.buyer(o.user, 'GET', `/v1/orders/${o.id}`));
    const views = await until('every card-key order delivered', read, (vs) => vs.every((v) => v.body.status === 'delivered'), 30_000, 100);
    const perOrder = views.map((v) => v.body.delivery.cardKeys as string[]);
    perOrder.forEach((k, i) => expect(k, orders[i]!.id).toHaveLength(orders[i]!.qty));
    expect(new Set(perOrder.flat()).size).toBe(units);
    expect(new Set(perOrder.flat())).toEqual(new Set(keys));
    // Read again: the same keys (no second assignment behind the first).
    expect((await read()).map((v) => v.body.delivery.cardKeys)).toEqual(perOrder);
    const histories = await inParallel(orders, 32, (o) => c.admin('GET', `/ops/orders/${o.id}`));
    for (const h of histories) expect(h.body.history.filter((l: { status: string }) => l.status === 'delivered'), h.body.orderId).toHaveLength(1);

    await kill('SIGTERM');
    const journal = await deliveredEventsPerOrder(dbUrl);
    for (const o of orders) expect([o.id, journal.get(o.id)]).toEqual([o.id, 1]);
    // A key assigned before the crash stayed with its order; every order holds exactly qty key rows.
    const assigned = await keyAssignments(dbUrl, 'ck-crash');
    for (const [keyId, orderId] of assignedAtKill) expect([keyId, assigned.get(keyId)]).toEqual([keyId, orderId]);
    const rowsPerOrder = new Map<string, number>();
    for (const orderId of assigned.values()) rowsPerOrder.set(orderId, (rowsPerOrder.get(orderId) ?? 0) + 1);
    for (const o of orders) expect([o.id, rowsPerOrder.get(o.id)]).toEqual([o.id, o.qty]);
    expect(assigned.size).toBe(units);
    await start();
  }, 60_000);

  it('tickets: a SIGKILL amid a storm of payment callbacks and deliveries; every order paid with a 200 is delivered once after restart', async () => {
    const ORDERS = 300;
    await c.sku('tix-crash', '2026-12-24', 1_000, { delivery: 'ticket', priceCents: 1500 });
    const orders = await inParallel(Array.from({ length: ORDERS }, (_, i) => i), 32, async (i) => {
      const user = `tx-u${i}`;
      const o = await c.buyer(user, 'POST', '/v1/orders', { skuId: 'tix-crash', date: '2026-12-24', qty: 1 + (i % 3) });
      expect(o.status).toBe(201);
      return { id: o.body.orderId as string, user, qty: 1 + (i % 3), amountCents: o.body.amountCents as number };
    });

    // Two callbacks per order (a provider's retry), shuffled, 48 at a time; killed once deliveries flow.
    const callbacks = [...orders, ...orders].sort(() => Math.random() - 0.5);
    const paidOk = new Set<string>();
    let dead = false;
    let answered = 0;
    const storm = inParallel(callbacks, 48, async (o) => {
      if (dead) return;
      const a = await tryPay(c, o.id, o.amountCents);
      if (!a) return;
      answered++;
      expect(a.status).toBe(200);
      expect(['paid', 'delivered']).toContain(a.body.status);
      paidOk.add(o.id);
    });
    const firstDelivery = () => metric('stampede_deliveries_total', { outcome: 'delivered' });
    await until('the first ticket delivery', firstDelivery, (n) => n > 0, 20_000, 5);
    await kill('SIGKILL');
    dead = true;
    await storm;
    expect(paidOk.size).toBeGreaterThan(0);
    expect(answered).toBeLessThan(callbacks.length);
    await start();

    // Every order whose payment got a 200 is delivered, without any new callback.
    const byId = new Map(orders.map((o) => [o.id, o]));
    const readAll = (ids: string[]) => inParallel(ids, 32, (id) => c.buyer(byId.get(id)!.user, 'GET', `/v1/orders/${id}`));
    await until('every order paid with a 200 delivered', () => readAll([...paidOk]), (vs) => vs.every((v) => v.body.status === 'delivered'), 30_000, 100);
    // The provider retries the callbacks that met the dead engine: those orders are paid and delivered too.
    const retried = await inParallel(orders, 32, (o) => c.pay({ orderId: o.id, paymentId: `pay-${o.id}`, amountCents: o.amountCents, status: 'succeeded' }));
    for (const a of retried) expect(['paid', 'delivered']).toContain(a.body.status);
    const all = orders.map((o) => o.id);
    const views = await until('every order delivered', () => readAll(all), (vs) => vs.every((v) => v.body.status === 'delivered'), 30_000, 100);
    const codes = views.map((v) => v.body.delivery.payload.tickets as string[]);
    codes.forEach((t, i) => expect(t, orders[i]!.id).toHaveLength(orders[i]!.qty));
    expect(new Set(codes.flat()).size).toBe(codes.flat().length);
    expect((await readAll(all)).map((v) => v.body.delivery.payload.tickets)).toEqual(codes);
    const histories = await inParallel(orders, 32, (o) => c.admin('GET', `/ops/orders/${o.id}`));
    for (const h of histories) {
      const lines = h.body.history as { status: string }[];
      expect([h.body.orderId, lines.filter((l) => l.status === 'paid').length, lines.filter((l) => l.status === 'delivered').length]).toEqual([h.body.orderId, 1, 1]);
    }
    expect((await c.admin('GET', '/ops/inventory/tix-crash/2026-12-24')).body).toMatchObject({ reserved: 0, sold: orders.reduce((n, o) => n + o.qty, 0) });

    await kill('SIGTERM');
    const journal = await deliveredEventsPerOrder(dbUrl);
    for (const o of orders) expect([o.id, journal.get(o.id)]).toEqual([o.id, 1]);
  }, 60_000);
});
