// Proves the ops queries over NATS answer exactly the bodies of the HTTP ops routes (inventory of a SKU/date, an order with its history) and `{ok:false, ...}` with the HTTP codes otherwise (unknown, bad body, buyer state not built yet), by asking a real node (embedded SQLite) both ways, over a nats-server of this file's own.
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/poll.ts';
import { messagingServicesOf, startMessaging, type Messaging } from '../../messaging/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { ask, capturingLogger, startOwnNats, type OwnNats } from './support.ts';

const DATE = '2026-12-01';

describe('ops queries over NATS', () => {
  let nats: OwnNats;
  let e: TestEngine;
  let nc: NatsConnection;
  let messaging: Messaging;

  beforeAll(async () => {
    nats = await startOwnNats();
    e = await startEngine({ kind: 'sqlite' });
    nc = await connect({ servers: nats.url, timeout: 2_000 });
    messaging = await startMessaging(nc, messagingServicesOf(e.node), capturingLogger().log);
    await e.client.sku('ops-sku', DATE, 20);
  });
  afterAll(async () => {
    await messaging?.stop();
    await nc?.close();
    await e?.stop();
    await nats?.stop();
  });

  it('stampede.ops.inventory.get answers the body of GET /ops/inventory/{skuId}/{date}', async () => {
    expect((await e.client.buyer('ops-u1', 'POST', '/v1/orders', { skuId: 'ops-sku', date: DATE, qty: 2 })).status).toBe(201);
    // Both reads must see the same projection: wait until the reservation is projected.
    await until('the reservation projected', () => e.client.admin('GET', `/ops/inventory/ops-sku/${DATE}`), (a) => a.body.projectedSeq === a.body.journalSeq);
    const viaNats = await ask(nc, 'stampede.ops.inventory.get', { skuId: 'ops-sku', date: DATE });
    const viaHttp = await e.client.admin('GET', `/ops/inventory/ops-sku/${DATE}`);
    expect(viaHttp.status).toBe(200);
    expect(viaNats).toEqual(viaHttp.body);
    expect(viaNats).toMatchObject({ skuId: 'ops-sku', date: DATE, total: 20, reserved: 2, available: 18, node: e.config.nodeId });
    expect(viaNats).not.toHaveProperty('ok');
  });

  it('stampede.ops.order.get answers the body of GET /ops/orders/{orderId}, history included', async () => {
    const placed = await e.client.buyer('ops-u2', 'POST', '/v1/orders', { skuId: 'ops-sku', date: DATE, qty: 1 });
    const cancelled = await e.client.buyer('ops-u2', 'POST', `/v1/orders/${placed.body.orderId}/cancel`);
    expect(cancelled.status).toBe(200);
    // The cancel is in the read model once projected; until then its line comes from the order's actor
    // (seq 0, like the reservation's own first line), so the two answers could differ in that seq.
    const unprojected = (body: { history: { seq: number }[] }) => body.history.slice(1).some((h) => h.seq === 0);
    let viaHttp = await e.client.admin('GET', `/ops/orders/${placed.body.orderId}`);
    for (let i = 0; i < 200 && unprojected(viaHttp.body); i++) {
      await new Promise((r) => setTimeout(r, 10));
      viaHttp = await e.client.admin('GET', `/ops/orders/${placed.body.orderId}`);
    }
    const viaNats = await ask(nc, 'stampede.ops.order.get', { orderId: placed.body.orderId });
    expect(viaNats).toEqual(viaHttp.body);
    expect(viaNats).toMatchObject({ orderId: placed.body.orderId, status: 'cancelled', userId: 'ops-u2' });
    expect(viaNats.history.map((h: { status: string }) => h.status)).toEqual(['reserved', 'cancelled']);
  });

  it('answers {ok:false} with the HTTP code and message for unknown things and bad bodies', async () => {
    const unknownStock = await ask(nc, 'stampede.ops.inventory.get', { skuId: 'ops-sku', date: '2027-01-01' });
    const unknownStockHttp = await e.client.admin('GET', '/ops/inventory/ops-sku/2027-01-01');
    expect(unknownStockHttp.status).toBe(404);
    expect(unknownStock).toEqual({ ok: false, ...unknownStockHttp.body });

    const unknownOrder = await ask(nc, 'stampede.ops.order.get', { orderId: 'nope' });
    expect(unknownOrder).toEqual({ ok: false, ...(await e.client.admin('GET', '/ops/orders/nope')).body });
    expect(unknownOrder.error).toBe('not_found');

    expect(await ask(nc, 'stampede.ops.inventory.get', { skuId: 'ops-sku', date: 'tomorrow' })).toMatchObject({
      ok: false,
      error: 'invalid_request',
      details: [{ path: ['date'] }],
    });
    expect(await ask(nc, 'stampede.ops.order.get', '{', { raw: true })).toMatchObject({ ok: false, error: 'invalid_request' });
    expect(await ask(nc, 'stampede.ops.buyer.get', { userId: '' })).toMatchObject({ ok: false, error: 'invalid_request', details: [{ path: ['userId'] }] });
  });

  it('stampede.ops.buyer.get answers the body of GET /ops/buyers/{userId}, read from the live limit actor', async () => {
    const http = await e.client.admin('GET', '/ops/buyers/ops-u1');
    expect(http.status).toBe(200);
    expect(http.body).toMatchObject({ userId: 'ops-u1', holds: [], counted: [], noShows: [], usage: [] });
    expect(await ask(nc, 'stampede.ops.buyer.get', { userId: 'ops-u1' })).toEqual(http.body);
  });
});
