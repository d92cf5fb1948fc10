// Proves the example merchant client works (and reads its STOCK and names its durable right for any merchant id the contract allows): within merchant m1's broker permissions (docker/nats/nats.conf on a nats-server of this file's own) it sets stock with stock.set, reads m1's events from its durable consumer (after a restart, only those it had not acked), logs every order once however often an eventId comes, and sends order.deliver for paid orders of its manual SKUs only; and end to end, with a real node publishing its own events to NATS, a buyer's paid manual order is delivered by the client and the buyer sees the payload.
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderIdFor } from '../../engine/index.ts';
import { parseStockLines, runMerchantClient, type LogEntry } from '../../examples/merchant-client/client.ts';
import { messagingServicesOf, startMessaging, type Messaging } from '../../messaging/index.ts';
import { nats_bus_defaults } from '../../persistence/bus/nats-bus.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { waitFor } from '../support/journal-faults.ts';
import { capturingLogger, NATS_CONF_PATH, startOwnNats, TEST_NATS_PASSWORDS, type OwnNats } from './support.ts';

const DATE = '2026-12-01';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

describe('the example merchant client', () => {
  let nats: OwnNats;
  let e: TestEngine;
  let engine: NatsConnection;
  let messaging: Messaging;
  /** order.deliver commands as they crossed the broker (a plain subscriber gets a copy). */
  const delivers: { orderId: string; payload: unknown }[] = [];

  beforeAll(async () => {
    nats = await startOwnNats({ config: NATS_CONF_PATH, env: TEST_NATS_PASSWORDS });
    e = await startEngine({ kind: 'sqlite' });
    engine = await connect({ servers: nats.url, user: 'stampede-engine', pass: TEST_NATS_PASSWORDS.STAMPEDE_NATS_ENGINE_PASSWORD, timeout: 2_000 });
    const jsm = await engine.jetstreamManager();
    await jsm.streams.add({ name: nats_bus_defaults.stream, subjects: [...nats_bus_defaults.subjects] });
    messaging = await startMessaging(engine, messagingServicesOf(e.node), capturingLogger().log);
    engine.subscribe('stampede.cmd.m1.order.deliver', { callback: (_err, m) => delivers.push(JSON.parse(decoder.decode(m.data))) });
    await engine.flush();
    for (const [skuId, delivery] of [
      ['cl-manual', 'manual'],
      ['cl-ticket', 'ticket'],
    ]) {
      expect((await e.client.admin('PUT', `/v1/skus/${skuId}`, { name: skuId, priceCents: 500, merchantId: 'm1', delivery })).status).toBe(200);
    }
    expect((await e.client.admin('PUT', `/v1/skus/cl-manual/stock/${DATE}`, { total: 5 })).status).toBe(200);
  });
  afterAll(async () => {
    await messaging?.stop();
    await engine?.close();
    await e?.stop();
    await nats?.stop();
  });

  /** Publishes an event the way the outbox relay does: JetStream, Nats-Msg-Id = `msgId` (normally the event id). */
  const publish = async (event: Record<string, unknown>, msgId = String(event.eventId)) => {
    await engine.jetstream().publish(`stampede.evt.m1.${event.type}`, encoder.encode(JSON.stringify(event)), { msgID: msgId });
  };
  const start = (log: LogEntry[]) =>
    runMerchantClient({
      servers: nats.url,
      merchantId: 'm1',
      pass: TEST_NATS_PASSWORDS.STAMPEDE_NATS_M1_PASSWORD,
      manualSkus: ['cl-manual'],
      stock: [{ skuId: 'cl-ticket', date: DATE, total: 25 }],
      log: (entry) => log.push(entry),
    });

  it('sets stock, logs orders once per eventId, delivers paid manual orders only, and resumes where it left off', async () => {
    const log: LogEntry[] = [];
    const client = await start(log);
    expect(log.find((l) => l.what === 'stock.set')).toMatchObject({ skuId: 'cl-ticket', total: 25, available: 25 });
    expect((await e.client.admin('GET', `/ops/inventory/cl-ticket/${DATE}`)).body).toMatchObject({ total: 25 });

    // An order id of m1's manual SKU that the engine never made: the engine answers not_found.
    const streamNo = e.node.catalog.stream('cl-manual', DATE)!.streamNo;
    const orderId = orderIdFor(Date.now(), { bytes: (n) => new Uint8Array(n).fill(3) }, streamNo);
    const order = { merchantId: 'm1', orderId, userId: 'u1', skuId: 'cl-manual', date: DATE, qty: 1, amountCents: 500 };
    await publish({ eventId: 'ev-1', type: 'order.reserved', at: new Date().toISOString(), ...order, status: 'reserved' });
    await publish({ eventId: 'ev-2', type: 'order.paid', at: new Date().toISOString(), ...order, status: 'paid', paymentId: 'p1' });
    await publish({ eventId: 'ev-3', type: 'order.paid', at: new Date().toISOString(), ...order, orderId: 'ticket-order', skuId: 'cl-ticket', status: 'paid' });
    // The same event again past JetStream's duplicate window (another Nats-Msg-Id): the client's dedupe catches it.
    await publish({ eventId: 'ev-2', type: 'order.paid', at: new Date().toISOString(), ...order, status: 'paid', paymentId: 'p1' }, 'ev-2-again');
    await waitFor(() => log.some((l) => l.what === 'event.duplicate'), 10_000, 'the duplicate');

    expect(log.filter((l) => l.what === 'order').map((l) => l.eventId)).toEqual(['ev-1', 'ev-2', 'ev-3']);
    expect(delivers).toEqual([{ orderId, payload: { code: `m1-${orderId}`, note: 'Show this code at the counter.' } }]);
    expect(log.find((l) => l.what === 'order.deliver_refused')).toMatchObject({ eventId: 'ev-2', orderId, error: 'not_found' });
    await client.stop();

    await publish({ eventId: 'ev-4', type: 'order.cancelled', at: new Date().toISOString(), ...order, status: 'cancelled' });
    const again: LogEntry[] = [];
    const restarted = await start(again);
    await waitFor(() => again.some((l) => l.what === 'order'), 10_000, 'the event published while stopped');
    await new Promise((r) => setTimeout(r, 300));
    expect(again.filter((l) => l.what === 'order').map((l) => l.eventId)).toEqual(['ev-4']);
    await restarted.stop();
    expect(delivers).toHaveLength(1);
  });

  it('retries a stock line while no engine answers, and sets it once one does', async () => {
    await messaging.stop();
    const log: LogEntry[] = [];
    const starting = runMerchantClient({
      servers: nats.url,
      merchantId: 'm1',
      pass: TEST_NATS_PASSWORDS.STAMPEDE_NATS_M1_PASSWORD,
      stock: [{ skuId: 'cl-ticket', date: DATE, total: 30 }],
      retryDelay_ms: 100,
      log: (entry) => log.push(entry),
    });
    await waitFor(() => log.some((l) => l.what === 'stock.retry'), 5_000, 'a retry of the stock line');
    messaging = await startMessaging(engine, messagingServicesOf(e.node), capturingLogger().log);
    const client = await starting;
    try {
      expect(log.find((l) => l.what === 'stock.retry')).toMatchObject({ skuId: 'cl-ticket', error: 'unavailable' });
      expect(log.find((l) => l.what === 'stock.set')).toMatchObject({ skuId: 'cl-ticket', total: 30 });
      expect((await e.client.admin('GET', `/ops/inventory/cl-ticket/${DATE}`)).body).toMatchObject({ total: 30 });
    } finally {
      await client.stop();
    }
  });
});

describe('the example merchant client with a node that publishes its own events', () => {
  let nats: OwnNats;
  let e: TestEngine;

  beforeAll(async () => {
    // A broker without users: the node's NATS connection has no credentials yet (see nats.conf).
    nats = await startOwnNats();
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_NATS_URL: nats.url });
    expect((await e.client.admin('PUT', '/v1/skus/e2e-tour', { name: 'Tour', priceCents: 4000, merchantId: 'm1', delivery: 'manual' })).status).toBe(200);
  });
  afterAll(async () => {
    await e?.stop();
    await nats?.stop();
  });

  it('delivers a paid manual order end to end: buyer pays over HTTP, the engine publishes, the client delivers, the buyer sees it', async () => {
    const log: LogEntry[] = [];
    const client = await runMerchantClient({
      servers: nats.url,
      merchantId: 'm1',
      manualSkus: ['e2e-tour'],
      stock: [{ skuId: 'e2e-tour', date: DATE, total: 10 }],
      deliveryPayload: (event) => ({ voucher: `V-${event.orderId}` }),
      log: (entry) => log.push(entry),
    });
    try {
      const placed = await e.client.buyer('e2e-buyer', 'POST', '/v1/orders', { skuId: 'e2e-tour', date: DATE, qty: 2 });
      expect(placed.status).toBe(201);
      const { orderId, amountCents } = placed.body;
      expect((await e.client.pay({ orderId, paymentId: 'e2e-pay', amountCents, status: 'succeeded' })).status).toBe(200);
      await waitFor(async () => (await e.client.buyer('e2e-buyer', 'GET', `/v1/orders/${orderId}`)).body.status === 'delivered', 20_000, 'the delivery');
      expect((await e.client.buyer('e2e-buyer', 'GET', `/v1/orders/${orderId}`)).body.delivery).toEqual({ payload: { voucher: `V-${orderId}` } });
      await waitFor(() => log.some((l) => l.what === 'order' && l.type === 'order.delivered'), 20_000, 'the order.delivered event');
      const types = log.filter((l) => l.what === 'order' && l.orderId === orderId).map((l) => l.type);
      expect(types).toEqual(['order.reserved', 'order.paid', 'order.delivered']);
      expect(log.filter((l) => l.what === 'order.delivered')).toEqual([{ what: 'order.delivered', eventId: expect.any(String), orderId }]);
    } finally {
      await client.stop();
    }
  });
});

describe('the example merchant client\'s input', () => {
  it('reads STOCK from the right, so a SKU id may hold ":"; refuses what it cannot read', () => {
    expect(parseStockLines('tour:1:2027-06-01:5,key-K:open:0')).toEqual([
      { skuId: 'tour:1', date: '2027-06-01', total: 5 },
      { skuId: 'key-K', date: 'open', total: 0 },
    ]);
    expect(parseStockLines(undefined)).toEqual([]);
    for (const bad of ['tour-1:2027-06-01', 'tour-1:2027-06-01:', ':2027-06-01:5', 'tour-1::5', 'tour-1:2027-06-01:-1', 'tour-1:2027-06-01:x']) {
      expect(() => parseStockLines(bad), bad).toThrow(RangeError);
    }
  });

  it('starts for a merchant id with a dot (shop.eu): its durable is named with the dot escaped', async () => {
    // A broker of its own without users (the shared one's stream may already take stampede.evt.>).
    const own = await startOwnNats();
    const nc = await connect({ servers: own.url, timeout: 2_000 });
    const stream = nats_bus_defaults.stream;
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [...nats_bus_defaults.subjects] });
    try {
      const client = await runMerchantClient({ servers: own.url, merchantId: 'shop.eu', log: () => {} });
      expect((await jsm.consumers.info(stream, 'merchant-shop%2Eeu')).config.durable_name).toBe('merchant-shop%2Eeu');
      await client.stop();
    } finally {
      await nc.close();
      await own.stop();
    }
  });
});

