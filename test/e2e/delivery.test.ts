// Proves paid orders are delivered exactly once over the bus, on the embedded default (outbox bus over
// SQLite) and on MariaDB + Redis + NATS JetStream: tickets get unique codes, free orders need no
// payment, manual orders wait for the merchant, a callback storm delivers once, and a card-key pool of
// 100 with 300 paid orders delivers 100 distinct keys, leaves 200 awaiting, and delivers them after an
// upload — each key to one order. Real node, real port; NATS is a server of the test's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';
import { OwnNatsServer } from '../support/nats-server.ts';
import { startEngine, type Client, type TestEngine } from '../support/engine.ts';

let nats: OwnNatsServer | undefined;

const backends = [
  ['embedded SQLite', async () => ({ backend: { kind: 'sqlite' as const }, extra: {} })],
  [
    'MariaDB + Redis + NATS',
    async () => {
      nats = await OwnNatsServer.start();
      return {
        backend: { kind: 'mysql' as const, url: await freshMysqlDatabase('e2e_delivery'), redisUrl: REDIS_URL },
        extra: { STAMPEDE_NATS_URL: nats.url },
      };
    },
  ],
] as const;

async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, timeout_ms = 20_000): Promise<T> {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function paidOrder(c: Client, user: string, skuId: string, date: string, qty = 1): Promise<string> {
  const o = await c.buyer(user, 'POST', '/v1/orders', { skuId, date, qty });
  expect(o.status).toBe(201);
  const p = await c.pay({ orderId: o.body.orderId, paymentId: `pay-${o.body.orderId}`, amountCents: o.body.amountCents, status: 'succeeded' });
  expect(p.body).toEqual({ orderId: o.body.orderId, status: 'paid' });
  return o.body.orderId;
}

describe.each(backends)('delivery on %s', (_name, setup) => {
  let e: TestEngine;
  beforeAll(async () => {
    const { backend, extra } = await setup();
    e = await startEngine(backend, { STAMPEDE_RESERVATION_TTL_MS: '600000', ...extra });
  });
  afterAll(async () => {
    await e?.stop();
    await nats?.dispose();
    nats = undefined;
  });

  it('delivers a paid ticket order with qty unique codes, once, even after a storm of the same callback', async () => {
    const c = e.client;
    await c.sku('tix', '2026-12-24', 50, { delivery: 'ticket', priceCents: 1500 });
    const o = await c.buyer('t-user', 'POST', '/v1/orders', { skuId: 'tix', date: '2026-12-24', qty: 3 });
    const body = { orderId: o.body.orderId, paymentId: 'pay-storm', amountCents: 4500, status: 'succeeded' as const };
    const storm = await Promise.all(Array.from({ length: 50 }, () => c.pay(body)));
    expect(new Set(storm.map((a) => a.status))).toEqual(new Set([200]));
    const got = await until('delivery', () => c.buyer('t-user', 'GET', `/v1/orders/${o.body.orderId}`), (a) => a.body.status === 'delivered');
    const codes: string[] = got.body.delivery.payload.tickets;
    expect(codes).toHaveLength(3);
    expect(new Set(codes).size).toBe(3);
    for (const code of codes) expect(code).toMatch(/^[A-Z0-9]{26}$/);
    // More duplicates after delivery change nothing: the same codes, one delivered line in the history.
    await Promise.all(Array.from({ length: 10 }, () => c.pay(body)));
    const again = await c.buyer('t-user', 'GET', `/v1/orders/${o.body.orderId}`);
    expect(again.body.delivery.payload.tickets).toEqual(codes);
    const ops = await c.admin('GET', `/ops/orders/${o.body.orderId}`);
    expect(ops.body.history.filter((h: { status: string }) => h.status === 'delivered')).toHaveLength(1);
    // Another buyer never sees it.
    expect((await c.buyer('someone-else', 'GET', `/v1/orders/${o.body.orderId}`)).status).toBe(404);
  });

  it('delivers a free ticket without any payment', async () => {
    const c = e.client;
    await c.sku('free-tix', '2026-12-25', 10, { delivery: 'ticket', priceCents: 0 });
    const o = await c.buyer('f-user', 'POST', '/v1/orders', { skuId: 'free-tix', date: '2026-12-25', qty: 2 });
    expect(o.status).toBe(201);
    expect(o.body.amountCents).toBe(0);
    const got = await until('free delivery', () => c.buyer('f-user', 'GET', `/v1/orders/${o.body.orderId}`), (a) => a.body.status === 'delivered');
    expect(got.body.delivery.payload.tickets).toHaveLength(2);
    expect((await c.admin('GET', '/ops/inventory/free-tix/2026-12-25')).body).toMatchObject({ sold: 2, reserved: 0 });
  });

  it('delivers for a merchant whose id contains a dot (escaped as %2E in subjects)', async () => {
    const c = e.client;
    await c.sku('dot-tix', '2026-12-27', 5, { delivery: 'ticket', priceCents: 100, merchantId: 'shop.eu' });
    const orderId = await paidOrder(c, 'dot-user', 'dot-tix', '2026-12-27');
    const got = await until('delivery', () => c.buyer('dot-user', 'GET', `/v1/orders/${orderId}`), (a) => a.body.status === 'delivered');
    expect(got.body.delivery.payload.tickets).toHaveLength(1);
  });

  it('leaves a manual order paid until the merchant delivers it', async () => {
    const c = e.client;
    await c.sku('manual-sku', '2026-12-26', 10, { delivery: 'manual', priceCents: 700 });
    const orderId = await paidOrder(c, 'm-user', 'manual-sku', '2026-12-26');
    await new Promise((r) => setTimeout(r, 300));
    const waiting = await c.buyer('m-user', 'GET', `/v1/orders/${orderId}`);
    expect(waiting.body).toMatchObject({ status: 'paid', awaitingDelivery: true });
    const r = await e.node.orders.deliverManual(orderId, { voucher: 'V-1' });
    expect(r.ok).toBe(true);
    const got = await c.buyer('m-user', 'GET', `/v1/orders/${orderId}`);
    expect(got.body).toMatchObject({ status: 'delivered', delivery: { payload: { voucher: 'V-1' } } });
    expect(got.body.awaitingDelivery).toBeUndefined();
  });

  it('a pool of 100 card keys and 300 paid orders: 100 delivered with distinct keys, 200 awaiting, all delivered after an upload', async () => {
    const c = e.client;
    const put = await c.admin('PUT', '/v1/skus/keys-sku', { name: 'Game key', priceCents: 999, merchantId: 'm1', delivery: 'card_key' });
    expect(put.status).toBe(200);
    // 300 units on sale, keys for 100 of them for now.
    expect((await c.admin('PUT', '/v1/skus/keys-sku/stock/open', { total: 200 })).status).toBe(200);
    const first = Array.from({ length: 100 }, (_, i) => `KEY-A-${i}-${'x'.repeat(i % 7)}`);
    expect((await c.admin('POST', '/v1/skus/keys-sku/card-keys', { keys: first })).body).toEqual({ added: 100, total: 100 });
    const orders = await Promise.all(Array.from({ length: 300 }, (_, i) => paidOrder(c, `k-user-${i}`, 'keys-sku', 'open')));
    const read = () => Promise.all(orders.map((id, i) => c.buyer(`k-user-${i}`, 'GET', `/v1/orders/${id}`)));
    let views = await until('100 deliveries', read, (vs) => vs.filter((v) => v.body.status === 'delivered').length === 100);
    await new Promise((r) => setTimeout(r, 300));
    views = await read();
    expect(views.filter((v) => v.body.status === 'delivered')).toHaveLength(100);
    expect(views.filter((v) => v.body.status === 'paid' && v.body.awaitingDelivery === true)).toHaveLength(200);
    const firstKeys = views.flatMap((v) => v.body.delivery?.cardKeys ?? []);
    expect(new Set(firstKeys).size).toBe(100);
    expect(new Set(firstKeys)).toEqual(new Set(first));

    const second = Array.from({ length: 200 }, (_, i) => `KEY-B-${i}`);
    expect((await c.admin('POST', '/v1/skus/keys-sku/card-keys', { keys: second })).body).toEqual({ added: 200, total: 300 });
    views = await until('300 deliveries', read, (vs) => vs.every((v) => v.body.status === 'delivered'));
    const all = views.map((v) => v.body.delivery.cardKeys as string[]);
    for (const keys of all) expect(keys).toHaveLength(1);
    // Keys in clear: no cache may keep the answer.
    for (const v of views) expect(v.headers.get('cache-control')).toBe('no-store');
    expect(new Set(all.flat()).size).toBe(300);
    expect(new Set(all.flat())).toEqual(new Set([...first, ...second]));
    expect(await e.node.stores.cardKeys.countUnassigned('keys-sku')).toBe(0);
    // Reconciliation finds nothing to repair once everything is delivered.
    await e.node.projector.drained();
    const report = await e.node.reconciler.run();
    expect(report.findings.filter((f) => f.id === 'keys-sku' || orders.includes(f.id))).toEqual([]);
  });

  it('an order parked for keys whose delivery fails once the keys came is delivered by a retry, not left paid', async () => {
    const c = e.client;
    expect((await c.admin('PUT', '/v1/skus/retry-keys', { name: 'Game key', priceCents: 999, merchantId: 'm1', delivery: 'card_key' })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/retry-keys/stock/open', { total: 1 })).status).toBe(200);
    const orderId = await paidOrder(c, 'parked-user', 'retry-keys', 'open');
    await until('parked', () => c.buyer('parked-user', 'GET', `/v1/orders/${orderId}`), (v) => v.body.awaitingDelivery === true);
    // Its bus event was settled while it waited; when the keys come, the first delivery attempt fails.
    const orders = e.node.orders;
    const deliverPaid = orders.deliverPaid.bind(orders);
    let failed = 0;
    orders.deliverPaid = (id: string) => (id === orderId && failed++ === 0 ? Promise.reject(new Error('injected: ask timed out')) : deliverPaid(id));
    try {
      expect((await c.admin('POST', '/v1/skus/retry-keys/card-keys', { keys: ['ONLY-KEY'] })).body).toEqual({ added: 1, total: 1 });
      const view = await until('delivered', () => c.buyer('parked-user', 'GET', `/v1/orders/${orderId}`), (v) => v.body.status === 'delivered', 10_000);
      expect(view.body.delivery.cardKeys).toEqual(['ONLY-KEY']);
      expect(failed).toBeGreaterThanOrEqual(2);
    } finally {
      orders.deliverPaid = deliverPaid;
    }
  });
});
