// Proves what a restart keeps on MariaDB + Redis, with the engine as a child process killed by SIGKILL: reservations past their TTL expire right after start without any request waking their SKU/date, Idempotency-Keys replay (or 422) across the restart, and a cancel stays cancelled with its history.
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';
import { Client, type Backend } from '../support/engine.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';
import { sleep } from '../support/journal-faults.ts';
import { until } from '../support/poll.ts';

const REDIS_DB_URL = `${REDIS_URL}/8`;

describe('restart on MariaDB + Redis (child process, SIGKILL)', () => {
  let engine: ChildEngine | undefined;
  beforeAll(async () => {
    // Our own Redis db: no snapshot of an earlier run may stand in for this run's streams.
    const redis = new Redis(REDIS_DB_URL);
    await redis.flushdb();
    redis.disconnect();
  });
  afterEach(async () => {
    await engine?.kill('SIGKILL');
    engine = undefined;
  });

  async function start(backend: Backend, env: Record<string, string> = {}): Promise<Client> {
    engine = await startChildEngine(backend, env);
    return new Client(engine.url);
  }

  it('expires reservations whose TTL passed while the engine was down, right after start, with no request to wake them', async () => {
    const dbUrl = await freshMysqlDatabase('e2e_restart_expiry');
    const backend: Backend = { kind: 'mysql', url: dbUrl, redisUrl: REDIS_DB_URL };
    const env = { STAMPEDE_RESERVATION_TTL_MS: '3000' };
    let c = await start(backend, env);
    await c.sku('rx', '2026-12-10', 10);
    const orders: { id: string; user: string; expiresAt: number }[] = [];
    for (const [i, qty] of [1, 2, 3].entries()) {
      const a = await c.buyer(`rx-${i}`, 'POST', '/v1/orders', { skuId: 'rx', date: '2026-12-10', qty });
      expect(a.status).toBe(201);
      orders.push({ id: a.body.orderId, user: `rx-${i}`, expiresAt: Date.parse(a.body.expiresAt) });
    }
    expect((await c.admin('GET', '/ops/inventory/rx/2026-12-10')).body).toMatchObject({ reserved: 6, available: 4 });
    await engine!.kill('SIGKILL');

    const latest = Math.max(...orders.map((o) => o.expiresAt));
    while (Date.now() < latest + 300) await sleep(50);
    // Reconciliation off: nothing but the start itself can wake the SKU/date (its periodic run would,
    // a minute later by default, and no request is made).
    c = await start(backend, { ...env, STAMPEDE_RECONCILE_INTERVAL_MS: '0' });

    // The read model (MariaDB) shows them expired without a single request on the SKU/date (polled;
    // the bound is only the hang guard).
    const conn = await mysql.createConnection(dbUrl);
    try {
      const statuses = await until(
        'the three orders expired in the read model',
        async () => ((await conn.query('SELECT status FROM orders WHERE order_id IN (?)', [orders.map((o) => o.id)]))[0] as { status: string }[]).map((r) => r.status),
        (st) => st.length === 3 && st.every((x) => x === 'expired'),
        20_000,
      );
      expect(statuses).toEqual(['expired', 'expired', 'expired']);
    } finally {
      await conn.end();
    }

    for (const o of orders) {
      const got = await c.buyer(o.user, 'GET', `/v1/orders/${o.id}`);
      expect([got.status, got.body.status]).toEqual([200, 'expired']);
    }
    const inv = await c.admin('GET', '/ops/inventory/rx/2026-12-10');
    expect(inv.body).toMatchObject({ total: 10, reserved: 0, sold: 0, available: 10 });
    const history = await c.admin('GET', `/ops/orders/${orders[0]!.id}`);
    expect(history.body.history.map((h: { status: string }) => h.status)).toEqual(['reserved', 'expired']);
  });

  it('replays an Idempotency-Key answer across a restart, and refuses it with another body (422)', async () => {
    const backend: Backend = { kind: 'mysql', url: await freshMysqlDatabase('e2e_restart_idem'), redisUrl: REDIS_DB_URL };
    let c = await start(backend);
    await c.sku('ri', '2026-12-11', 10);
    const order = { skuId: 'ri', date: '2026-12-11', qty: 2 };
    const first = await c.buyer('ida', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'restart-key-1' });
    expect(first.status).toBe(201);
    // Killed right after the 201: the stored answer must come from durable state.
    await engine!.kill('SIGKILL');

    c = await start(backend);
    const again = await c.buyer('ida', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'restart-key-1' });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    const other = await c.buyer('ida', 'POST', '/v1/orders', { ...order, qty: 3 }, { 'Idempotency-Key': 'restart-key-1' });
    expect([other.status, other.body.error]).toEqual([422, 'idempotency_key_reused']);
    // The replay took no stock: still the one order of 2.
    expect((await c.admin('GET', '/ops/inventory/ri/2026-12-11')).body).toMatchObject({ reserved: 2, available: 8 });
    // And once more after a second restart, now that it is surely in the read model.
    await engine!.kill('SIGKILL');
    c = await start(backend);
    const third = await c.buyer('ida', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'restart-key-1' });
    expect([third.status, third.body]).toEqual([201, first.body]);
    expect((await c.buyer('ida', 'POST', '/v1/orders', { ...order, qty: 1 }, { 'Idempotency-Key': 'restart-key-1' })).status).toBe(422);
    expect((await c.admin('GET', '/ops/inventory/ri/2026-12-11')).body.reserved).toBe(2);
  });

  it('keeps a keyed refusal as the key\'s first answer across a restart: 404, not_on_sale and limit_exceeded again, not a new order', async () => {
    const backend: Backend = { kind: 'mysql', url: await freshMysqlDatabase('e2e_restart_refusals'), redisUrl: REDIS_DB_URL };
    let c = await start(backend);
    const opensAt = Date.now() + 4_000;
    await c.sku('rn', '2026-12-13', 10, { saleStartsAt: new Date(opensAt).toISOString() });
    await c.sku('rl', '2026-12-13', 10);
    expect((await c.admin('PUT', '/v1/limit-rules/one-open', { id: 'one-open', max: { orders: 1 } })).status).toBe(200);
    const early = { skuId: 'rn', date: '2026-12-13', qty: 1 };
    const ghost = { skuId: 'ghost', date: '2026-12-13', qty: 1 };
    const limited = { skuId: 'rl', date: '2026-12-13', qty: 1 };
    const first = {
      early: await c.buyer('ref', 'POST', '/v1/orders', early, { 'Idempotency-Key': 'k-early' }),
      ghost: await c.buyer('ref', 'POST', '/v1/orders', ghost, { 'Idempotency-Key': 'k-ghost' }),
      open: await c.buyer('lim', 'POST', '/v1/orders', limited),
      limit: undefined as undefined | Awaited<ReturnType<Client['buyer']>>,
    };
    first.limit = await c.buyer('lim', 'POST', '/v1/orders', limited, { 'Idempotency-Key': 'k-limit' });
    expect([first.early.status, first.early.body.error]).toEqual([409, 'not_on_sale']);
    expect([first.ghost.status, first.ghost.body.error]).toEqual([404, 'not_found']);
    expect(first.open.status).toBe(201);
    expect([first.limit.status, first.limit.body.error]).toEqual([403, 'limit_exceeded']);
    // What refused them goes away: the buyer's open order is cancelled, the SKU gets created.
    expect((await c.buyer('lim', 'POST', `/v1/orders/${first.open.body.orderId}/cancel`)).status).toBe(200);
    await engine!.kill('SIGKILL');

    c = await start(backend);
    await c.sku('ghost', '2026-12-13', 10);
    while (Date.now() < opensAt + 100) await sleep(50);
    // The same key and body: the first answer again (API.md), not an order.
    const again = {
      early: await c.buyer('ref', 'POST', '/v1/orders', early, { 'Idempotency-Key': 'k-early' }),
      ghost: await c.buyer('ref', 'POST', '/v1/orders', ghost, { 'Idempotency-Key': 'k-ghost' }),
      limit: await c.buyer('lim', 'POST', '/v1/orders', limited, { 'Idempotency-Key': 'k-limit' }),
    };
    expect([again.early.status, again.early.body]).toEqual([409, first.early.body]);
    expect([again.ghost.status, again.ghost.body]).toEqual([404, first.ghost.body]);
    expect([again.limit.status, again.limit.body]).toEqual([403, first.limit.body]);
    // Another body with one of those keys is 422; a new key orders as usual now.
    expect((await c.buyer('ref', 'POST', '/v1/orders', { ...early, qty: 2 }, { 'Idempotency-Key': 'k-early' })).status).toBe(422);
    expect((await c.buyer('ref', 'POST', '/v1/orders', early, { 'Idempotency-Key': 'k-new' })).status).toBe(201);
    expect((await c.admin('GET', '/ops/inventory/rn/2026-12-13')).body.reserved).toBe(1);
    expect((await c.admin('GET', '/ops/inventory/ghost/2026-12-13')).body.reserved).toBe(0);
    expect((await c.admin('GET', '/ops/inventory/rl/2026-12-13')).body.reserved).toBe(0);
  });

  it('keeps a cancel across a restart: a second cancel is 200 cancelled and the history is [reserved, cancelled]', async () => {
    const backend: Backend = { kind: 'mysql', url: await freshMysqlDatabase('e2e_restart_cancel'), redisUrl: REDIS_DB_URL };
    let c = await start(backend);
    await c.sku('rc', '2026-12-12', 5);
    const placed = await c.buyer('cal', 'POST', '/v1/orders', { skuId: 'rc', date: '2026-12-12', qty: 3 });
    expect(placed.status).toBe(201);
    const cancelled = await c.buyer('cal', 'POST', `/v1/orders/${placed.body.orderId}/cancel`);
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'cancelled']);
    await engine!.kill('SIGKILL');

    c = await start(backend);
    const again = await c.buyer('cal', 'POST', `/v1/orders/${placed.body.orderId}/cancel`);
    expect([again.status, again.body.status, again.body.orderId]).toEqual([200, 'cancelled', placed.body.orderId]);
    const got = await c.buyer('cal', 'GET', `/v1/orders/${placed.body.orderId}`);
    expect([got.status, got.body.status]).toEqual([200, 'cancelled']);
    const history = await c.admin('GET', `/ops/orders/${placed.body.orderId}`);
    expect(history.status).toBe(200);
    expect(history.body.history.map((h: { status: string }) => h.status)).toEqual(['reserved', 'cancelled']);
    expect((await c.admin('GET', '/ops/inventory/rc/2026-12-12')).body).toMatchObject({ total: 5, reserved: 0, available: 5 });
  });
});
