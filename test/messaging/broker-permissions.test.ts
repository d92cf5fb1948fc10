// Proves that docker/nats/nats.conf, run as it ships (only address, port and store folder overridden) by a nats-server of this file's own, makes the broker itself keep merchants apart: m1 can command its own subjects and read its own events through its durable consumer, but is refused (permissions violation) publishing to m2's commands or the ops queries, subscribing to m2's events or to other inboxes, and creating a consumer wider than its own filter.
import { AckPolicy, connect, ErrorCode, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagingServicesOf, startMessaging, type Messaging } from '../../messaging/index.ts';
import { nats_bus_defaults } from '../../persistence/bus/nats-bus.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { ask, capturingLogger, NATS_CONF_PATH, startOwnNats, TEST_NATS_PASSWORDS, type OwnNats } from './support.ts';

const DATE = '2026-12-01';
const STREAM = nats_bus_defaults.stream;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Resolves with the error a subscription gets from the server, or undefined if none comes within `ms`. */
function subscriptionError(nc: NatsConnection, subject: string, ms = 1_000): Promise<NatsError | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      resolve(undefined);
    }, ms);
    const sub = nc.subscribe(subject, {
      callback: (error) => {
        if (!error) return;
        clearTimeout(timer);
        resolve(error);
      },
    });
  });
}

describe('the broker config of docker-compose keeps merchants apart', () => {
  let nats: OwnNats;
  let e: TestEngine;
  let engine: NatsConnection;
  let m1: NatsConnection;
  let messaging: Messaging;

  const as = (user: 'm1' | 'ops', extra: { inboxPrefix?: string | null } = {}) =>
    connect({
      servers: nats.url,
      user,
      pass: TEST_NATS_PASSWORDS[`STAMPEDE_NATS_${user.toUpperCase()}_PASSWORD` as keyof typeof TEST_NATS_PASSWORDS],
      ...(extra.inboxPrefix === null ? {} : { inboxPrefix: extra.inboxPrefix ?? `_INBOX_${user}` }),
      timeout: 2_000,
    });

  beforeAll(async () => {
    nats = await startOwnNats({ config: NATS_CONF_PATH, env: TEST_NATS_PASSWORDS });
    e = await startEngine({ kind: 'sqlite' });
    engine = await connect({ servers: nats.url, user: 'stampede-engine', pass: TEST_NATS_PASSWORDS.STAMPEDE_NATS_ENGINE_PASSWORD, timeout: 2_000 });
    const jsm = await engine.jetstreamManager();
    await jsm.streams.add({ name: STREAM, subjects: [...nats_bus_defaults.subjects] });
    messaging = await startMessaging(engine, messagingServicesOf(e.node), capturingLogger().log);
    await e.client.sku('perm-m1', DATE, 10);
    await e.client.sku('perm-m2', DATE, 10, { merchantId: 'm2' });
    m1 = await as('m1');
  });
  afterAll(async () => {
    await messaging?.stop();
    await m1?.close();
    await engine?.close();
    await e?.stop();
    await nats?.stop();
  });

  it('m1 may command its own subject, and is refused by the broker on m2s', async () => {
    expect(m1.info?.max_payload).toBe(4 * 1024 * 1024);
    expect(await ask(m1, 'stampede.cmd.m1.stock.set', { skuId: 'perm-m1', date: DATE, total: 7 })).toMatchObject({ ok: true, total: 7 });
    const refused = (await ask(m1, 'stampede.cmd.m2.stock.set', { skuId: 'perm-m2', date: DATE, total: 999 }).catch((err: unknown) => err)) as NatsError;
    expect(refused.code).toBe(ErrorCode.PermissionsViolation);
    expect(refused.message).toContain('stampede.cmd.m2.stock.set');
    expect((await e.client.admin('GET', `/ops/inventory/perm-m2/${DATE}`)).body).toMatchObject({ total: 10 });
    // m1's connection survives the violation.
    expect(await ask(m1, 'stampede.cmd.m1.stock.set', { skuId: 'perm-m1', date: DATE, total: 8 })).toMatchObject({ ok: true, total: 8 });
  });

  it('only the ops user (and the engine) may ask the ops queries', async () => {
    const refused = (await ask(m1, 'stampede.ops.inventory.get', { skuId: 'perm-m2', date: DATE }).catch((err: unknown) => err)) as NatsError;
    expect(refused.code).toBe(ErrorCode.PermissionsViolation);
    const ops = await as('ops');
    expect(await ask(ops, 'stampede.ops.inventory.get', { skuId: 'perm-m2', date: DATE })).toMatchObject({ skuId: 'perm-m2', total: 10 });
    await ops.close();
  });

  it("m1 may not subscribe to m2's events, to the shared inbox, or to m2's inbox", async () => {
    for (const subject of ['stampede.evt.m2.>', 'stampede.evt.>', 'stampede.cmd.>', '_INBOX.>', '_INBOX_m2.>']) {
      expect((await subscriptionError(m1, subject))?.code, subject).toBe(ErrorCode.PermissionsViolation);
    }
    expect(await subscriptionError(m1, 'stampede.evt.m1.>', 300)).toBeUndefined();
    // A merchant on the default inbox prefix cannot even receive a reply.
    const plain = await as('m1', { inboxPrefix: null });
    const refused = (await ask(plain, 'stampede.cmd.m1.stock.set', { skuId: 'perm-m1', date: DATE, total: 8 }).catch((err: unknown) => err)) as NatsError;
    expect(refused.code).toBe(ErrorCode.PermissionsViolation);
    await plain.close().catch(() => {});
  });

  it('m1 reads its own events through its durable consumer and cannot widen it', async () => {
    const jsm = await m1.jetstreamManager({ checkAPI: false });
    const config = { durable_name: 'merchant-m1', filter_subject: 'stampede.evt.m1.>', ack_policy: AckPolicy.Explicit };
    await jsm.consumers.add(STREAM, config);
    for (const wider of [{ ...config, filter_subject: 'stampede.evt.>' }, { ...config, filter_subject: 'stampede.evt.m2.>' }, { ...config, durable_name: 'merchant-m2', filter_subject: 'stampede.evt.m2.>' }]) {
      const refused = (await jsm.consumers.add(STREAM, wider).catch((err: unknown) => err)) as NatsError;
      expect(refused.code, JSON.stringify(wider)).toBe(ErrorCode.PermissionsViolation);
    }
    // The permitted create subject with a wider filter in the body: JetStream itself refuses it.
    const raw = await m1.request(
      `$JS.API.CONSUMER.CREATE.${STREAM}.merchant-m1.stampede.evt.m1.>`,
      encoder.encode(JSON.stringify({ stream_name: STREAM, config: { ...config, name: 'merchant-m1', filter_subject: 'stampede.evt.>' } })),
    );
    expect(JSON.parse(decoder.decode(raw.data)).error?.err_code).toBe(10131);

    const js = engine.jetstream();
    await js.publish('stampede.evt.m2.order.paid', encoder.encode('{"eventId":"perm-e2"}'), { msgID: 'perm-e2' });
    await js.publish('stampede.evt.m1.order.paid', encoder.encode('{"eventId":"perm-e1"}'), { msgID: 'perm-e1' });
    const consumer = await m1.jetstream().consumers.get(STREAM, 'merchant-m1');
    const seen: string[] = [];
    for await (const m of await consumer.fetch({ max_messages: 10, expires: 1_000 })) {
      seen.push(`${m.subject} ${decoder.decode(m.data)}`);
      m.ack();
    }
    expect(seen).toEqual(['stampede.evt.m1.order.paid {"eventId":"perm-e1"}']);
  });
});
