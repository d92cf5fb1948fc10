// Proves NATS is off the purchase path and loses no event (events go out at their commit while NATS is up, through the relay for what the outage held back): a node on MariaDB + Redis + a NATS server of the test's own keeps answering reservations, payments and cancels correctly (and stays ready) while that server is SIGKILLed mid-sale, and once it is started again a durable JetStream consumer of the test's own, deduping by event id, has received every expected event — one order.reserved per 201, order.paid and order.delivered per paid ticket order, order.cancelled per cancel — each exactly once, none missing.
import { AckPolicy, connect, DeliverPolicy, nanos, type JsMsg, type NatsConnection } from 'nats';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { sampleValue } from '../support/metrics.ts';
import { OwnNatsServer } from '../support/nats-server.ts';
import { until } from '../support/poll.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';

/** Our own Redis db: no snapshot of an earlier run may stand in for this run's streams. */
const REDIS_DB_URL = `${REDIS_URL}/10`;
const STREAM = 'STAMPEDE_EVENTS';
const DURABLE = 'test-outage-collector';

interface Received {
  subject: string;
  body: { eventId: string; type: string; orderId?: string; merchantId: string; [k: string]: unknown };
}

/**
 * A merchant's consumer: durable, explicit acks, every `stampede.evt.>` event; keeps one copy per
 * event id and counts repeats. Rides out the outage by reconnecting forever and pulling again.
 */
class EventCollector {
  readonly byId = new Map<string, Received>();
  deliveries = 0;
  /** Messages whose Nats-Msg-Id header and body eventId disagree (must stay empty). */
  readonly mismatched: string[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  private constructor(private readonly nc: NatsConnection) {}

  static async start(url: string): Promise<EventCollector> {
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200, name: 'test-event-collector' });
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.add(STREAM, {
      durable_name: DURABLE,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: 'stampede.evt.>',
      ack_wait: nanos(5_000),
    });
    const collector = new EventCollector(nc);
    collector.loop = collector.run();
    return collector;
  }

  private take(m: JsMsg): void {
    this.deliveries++;
    const body = JSON.parse(new TextDecoder().decode(m.data)) as Received['body'];
    const header = m.headers?.get('Nats-Msg-Id');
    if (header !== body.eventId) this.mismatched.push(`${m.subject}: header ${header} body ${body.eventId}`);
    if (!this.byId.has(body.eventId)) this.byId.set(body.eventId, { subject: m.subject, body });
  }

  private async run(): Promise<void> {
    const js = this.nc.jetstream();
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(STREAM, DURABLE);
        while (!this.stopped) {
          const batch = await consumer.fetch({ max_messages: 500, expires: 1_000 });
          for await (const m of batch) {
            this.take(m);
            m.ack();
          }
        }
      } catch {
        // NATS away: pull again shortly (the connection reconnects by itself).
        if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.race([this.loop, new Promise((r) => setTimeout(r, 3_000))]);
    await this.nc.close().catch(() => undefined);
  }
}

describe('a NATS outage mid-sale on MariaDB + Redis + NATS', () => {
  let nats: OwnNatsServer;
  let e: TestEngine;
  let collector: EventCollector | undefined;

  beforeAll(async () => {
    const redis = new Redis(REDIS_DB_URL);
    await redis.flushdb();
    redis.disconnect();
    nats = await OwnNatsServer.start();
    e = await startEngine(
      { kind: 'mysql', url: await freshMysqlDatabase('e2e_nats_outage'), redisUrl: REDIS_DB_URL },
      { STAMPEDE_NATS_URL: nats.url, STAMPEDE_RESERVATION_TTL_MS: '600000', STAMPEDE_RECONCILE_INTERVAL_MS: '0' },
    );
    // The node created the stream; the merchant's durable consumer starts before the sale.
    collector = await EventCollector.start(nats.url);
  });
  afterAll(async () => {
    await collector?.stop();
    await e?.stop();
    await nats?.dispose();
  });

  it('answers every purchase correctly while NATS is down, and every event arrives exactly once (after dedupe) once it is back', async () => {
    const c = e.client;
    await c.sku('outage', '2026-12-24', 5_000, { delivery: 'ticket', priceCents: 1200 });
    const metricText = async () => (await c.admin('GET', '/metrics')).body as string;
    const publishFailuresBefore = sampleValue(await metricText(), 'stampede_bus_failures_total', { what: 'publish' });

    // The events a merchant must see, by "<orderId> <type>".
    const expected = new Set<string>();
    const paidOrders: { id: string; user: string }[] = [];
    /** Paid while NATS was down (and before it came back): the bus could not carry their order.paid. */
    const paidWhileDown: { id: string; user: string }[] = [];
    const SCENARIOS = 300;
    let next = 0;
    let done = 0;
    let doneWhileDown = 0;
    let natsDown = false;
    // One buyer per scenario: reserve, then pay (half of them, sometimes twice), cancel (a quarter), or leave it reserved.
    const workers = Array.from({ length: 12 }, async () => {
      while (next < SCENARIOS) {
        const i = next++;
        const user = `no-u${i}`;
        const o = await c.buyer(user, 'POST', '/v1/orders', { skuId: 'outage', date: '2026-12-24', qty: 1 + (i % 2) });
        expect(o.status, `reserve ${i}`).toBe(201);
        const id = o.body.orderId as string;
        expected.add(`${id} order.reserved`);
        if (i % 4 < 2) {
          const body = { orderId: id, paymentId: `pay-${id}`, amountCents: o.body.amountCents as number, status: 'succeeded' as const };
          expect((await c.pay(body)).body, `pay ${i}`).toEqual({ orderId: id, status: 'paid' });
          if (i % 8 === 0) expect(['paid', 'delivered']).toContain((await c.pay(body)).body.status);
          expected.add(`${id} order.paid`).add(`${id} order.delivered`);
          paidOrders.push({ id, user });
          if (natsDown) paidWhileDown.push({ id, user });
        } else if (i % 4 === 2) {
          const x = await c.buyer(user, 'POST', `/v1/orders/${id}/cancel`);
          expect([x.status, x.body.status], `cancel ${i}`).toEqual([200, 'cancelled']);
          expected.add(`${id} order.cancelled`);
        }
        done++;
        if (natsDown) doneWhileDown++;
      }
    });

    // Kill NATS a third of the way in; keep selling; start it again after a while and some sales.
    await until('a third of the sale', async () => done, (n) => n >= SCENARIOS / 3, 30_000, 5);
    await nats.kill();
    natsDown = true;
    try {
      const downSince = Date.now();
      const ready = await c.request('GET', '/readyz');
      // NATS is not on the purchase path: the node stays ready, and says it is degraded.
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'degraded', dependencies: { nats: false } });
      await until('sales and time while NATS is down', async () => ({ n: doneWhileDown, ms: Date.now() - downSince, all: done === SCENARIOS }), (s) => (s.n >= 80 || s.all) && s.ms >= 1_500, 30_000, 20);
      expect((await c.request('GET', '/readyz')).status).toBe(200);
      // The relay did meet the outage (and retried), the purchases did not.
      // (A publish caught in flight by the kill fails only at its PubAck timeout, hence the wait.)
      await until('a failed publish while NATS is down', async () => sampleValue(await metricText(), 'stampede_bus_failures_total', { what: 'publish' }), (n) => n > publishFailuresBefore, 15_000, 100);
      // Delivery starts in process as soon as a payment is durable: the orders paid during the outage
      // are delivered while NATS is still down (the bus's consumer is only the safety net).
      const whileDown = [...paidWhileDown];
      expect(whileDown.length).toBeGreaterThan(0);
      const statusOf = async (o: { id: string; user: string }) => (await c.buyer(o.user, 'GET', `/v1/orders/${o.id}`)).body.status as string;
      await until('orders paid during the outage delivered without the bus', async () => (await Promise.all(whileDown.map(statusOf))).filter((s) => s !== 'delivered').length, (n) => n === 0, 10_000, 50);
    } finally {
      // Started again whatever failed while it was down; the buyers finish before the test ends.
      await nats.start();
      natsDown = false;
      await Promise.allSettled(workers);
    }
    await Promise.all(workers); // a buyer's failed expectation fails the test
    expect(doneWhileDown).toBeGreaterThan(0);

    const ourKeys = () => {
      const got = new Map<string, string[]>();
      for (const [eventId, r] of collector!.byId) {
        if (r.body.orderId === undefined || r.body.skuId !== 'outage') continue;
        const key = `${r.body.orderId} ${r.body.type}`;
        got.set(key, [...(got.get(key) ?? []), eventId]);
      }
      return got;
    };
    const missing = () => [...expected].filter((k) => !ourKeys().has(k));
    await until('every expected event at the merchant', async () => missing(), (m) => m.length === 0, 40_000, 100);
    const got = ourKeys();
    // Exactly once after dedupe: one event id per order and kind, and no kind that should not be there.
    expect([...got.entries()].filter(([, ids]) => ids.length !== 1)).toEqual([]);
    expect([...got.keys()].filter((k) => !expected.has(k))).toEqual([]);
    expect(got.size).toBe(expected.size);
    expect(collector!.mismatched).toEqual([]);
    for (const [eventId, r] of collector!.byId) {
      expect(r.subject).toBe(`stampede.evt.m1.${r.body.type}`);
      expect(r.body.eventId).toBe(eventId);
    }
    // Every paid order is delivered (and its order.delivered reached the merchant above).
    for (const o of paidOrders) expect((await c.buyer(o.user, 'GET', `/v1/orders/${o.id}`)).body.status).toBe('delivered');
    expect((await c.request('GET', '/readyz')).status).toBe(200);
    // Events went out at their commit while NATS was up, and through the relay for the outage.
    const published = await metricText();
    expect(sampleValue(published, 'stampede_events_published_total', { path: 'live' })).toBeGreaterThan(0);
    expect(sampleValue(published, 'stampede_events_published_total', { path: 'relay' })).toBeGreaterThan(0);
  }, 60_000);
});
