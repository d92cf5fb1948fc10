// Proves `stampede_reservations_total` counts every order attempt the engine decided, by its outcome,
// including the refusals made before any SKU/date is asked (unknown SKU, not on sale, a purchase rule)
// as well as the SKU/date's own (reserved, sold out) — on a real node (embedded SQLite) over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { sampleValue } from '../support/metrics.ts';

describe('reservation outcomes in the metrics', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' });
  });
  afterAll(async () => e?.stop());

  it('counts reserved, sold_out, limit_exceeded, not_on_sale and not_found', async () => {
    const c = e.client;
    expect((await c.admin('PUT', '/v1/limit-rules/five', { id: 'five', max: { units: 5 } })).status).toBe(200);
    await c.sku('mx', '2026-12-24', 6);
    await c.sku('mx-later', '2026-12-24', 10, { saleStartsAt: '2031-01-01T00:00:00Z' });
    const order = (user: string, skuId: string, qty: number) => c.buyer(user, 'POST', '/v1/orders', { skuId, date: '2026-12-24', qty });
    expect((await order('mx-a', 'mx', 5)).status).toBe(201);
    expect((await order('mx-a', 'mx', 1)).body.error).toBe('limit_exceeded');
    expect((await order('mx-b', 'mx', 2)).body.error).toBe('sold_out');
    expect((await order('mx-b', 'mx-later', 1)).body.error).toBe('not_on_sale');
    expect((await order('mx-b', 'mx-nowhere', 1)).body.error).toBe('not_found');
    const text = (await c.admin('GET', '/metrics')).body as string;
    const count = (outcome: string) => sampleValue(text, 'stampede_reservations_total', { outcome });
    expect(['reserved', 'limit_exceeded', 'sold_out', 'not_on_sale', 'not_found'].map(count)).toEqual([1, 1, 1, 1, 1]);
  });
});
