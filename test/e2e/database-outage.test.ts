// Proves a database outage mid-sale has a defined answer and no hang: the engine reaches the real
// MariaDB through a TCP proxy that the test cuts and restores; while cut, orders get 503
// `unavailable` with Retry-After within the ask deadline and readiness is 503; once restored, orders
// succeed again and every 201 — before and after — is in the recovered state, nothing more.
import { afterAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { proxiedMysql, type TcpProxy } from '../support/tcp-proxy.ts';

describe('MariaDB outage', () => {
  let e: TestEngine | undefined;
  let proxy: TcpProxy | undefined;
  afterAll(async () => {
    proxy?.restore();
    await e?.stop();
    await proxy?.stop();
  });

  it('answers 503 unavailable while the database is unreachable and recovers when it is back', async () => {
    const proxied = await proxiedMysql('e2e_outage');
    proxy = proxied.proxy;
    e = await startEngine({ kind: 'mysql', url: proxied.url }, { STAMPEDE_ASK_TIMEOUT_MS: '3000' });
    const c = e.client;
    await c.sku('out', '2026-12-20', 1_000);
    const before = await Promise.all(Array.from({ length: 50 }, (_, i) => c.buyer(`b${i}`, 'POST', '/v1/orders', { skuId: 'out', date: '2026-12-20', qty: 1 })));
    expect(before.every((a) => a.status === 201)).toBe(true);

    proxy.cut();
    // Every order is answered (the ask deadline and the store's time limits end it; the test's
    // timeout is the hang guard), and the answer is the defined one: 503 unavailable, Retry-After.
    const during = await Promise.all(Array.from({ length: 20 }, (_, i) => c.buyer(`d${i}`, 'POST', '/v1/orders', { skuId: 'out', date: '2026-12-20', qty: 1 })));
    for (const a of during) {
      expect(a.status).toBe(503);
      expect(a.body.error).toBe('unavailable');
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect((await c.request('GET', '/readyz')).status).toBe(503);

    proxy.restore();
    // Back: the actor recovers from durable state on the next request.
    let after = await c.buyer('a0', 'POST', '/v1/orders', { skuId: 'out', date: '2026-12-20', qty: 1 });
    for (let i = 0; after.status !== 201 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = await c.buyer('a0', 'POST', '/v1/orders', { skuId: 'out', date: '2026-12-20', qty: 1 });
    }
    expect(after.status).toBe(201);
    const ops = await c.admin('GET', '/ops/inventory/out/2026-12-20');
    expect(ops.status).toBe(200);
    // Every 201 is there; a refused order left nothing (the 503s changed nothing durable).
    expect(ops.body.reserved).toBe(51);
    for (const a of [...before, after]) {
      const got = await c.admin('GET', `/ops/orders/${a.body.orderId}`);
      expect(got.body.status).toBe('reserved');
    }
    // Readiness follows within a second (one dependency check a second answers every probe).
    let ready = await c.request('GET', '/readyz');
    for (let i = 0; ready.status !== 200 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 200));
      ready = await c.request('GET', '/readyz');
    }
    expect(ready.status).toBe(200);
  }, 90_000);
});
