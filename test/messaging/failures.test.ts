// Proves every NATS request that asks for a reply gets one, however its handler ends — a journal write that fails (injected into a real node's journal) is `unavailable` with retryAfter_s, a bug is `internal` without its message, one merchant past its in-flight bound is `overloaded` at once while another merchant is served, even when four merchants are each at their bound of slow commands or uploads (their handlers held at a gate) — and that stop() takes the subscriptions away, on a nats-server of this file's own.
import { connect, ErrorCode, type NatsConnection, type NatsError } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { merchant_command_limits, messagingServicesOf, startMessaging, type Messaging, type MessagingServices } from '../../messaging/index.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { injectJournalFaults, waitFor, type JournalFaults } from '../support/journal-faults.ts';
import { ask, capturingLogger, startOwnNats, type OwnNats } from './support.ts';

const DATE = '2026-12-01';

describe('NATS replies when handlers fail', () => {
  let nats: OwnNats;
  let e: TestEngine;
  let nc: NatsConnection;
  let messaging: Messaging | undefined;
  let faults: JournalFaults | undefined;

  beforeAll(async () => {
    nats = await startOwnNats();
    e = await startEngine({ kind: 'sqlite' });
    nc = await connect({ servers: nats.url, timeout: 2_000 });
    await e.client.sku('f-m1', DATE, 10);
    await e.client.sku('f-m2', DATE, 10, { merchantId: 'm2' });
  });
  /** Opens a gate of heldAt's, so that a failed test leaves no request held. */
  let releaseGate: (() => void) | undefined;
  // One messaging instance at a time: two in the queue group would share the requests.
  afterEach(async () => {
    releaseGate?.();
    releaseGate = undefined;
    faults?.restore();
    for (const held of faults?.held.splice(0) ?? []) await held.release();
    faults = undefined;
    await messaging?.stop();
    messaging = undefined;
  });
  afterAll(async () => {
    await nc?.close();
    await e?.stop();
    await nats?.stop();
  });

  it('a journal write that fails is answered unavailable with retryAfter_s, and nothing changed', async () => {
    const { log, lines } = capturingLogger();
    messaging = await startMessaging(nc, messagingServicesOf(e.node), log);
    faults = injectJournalFaults(e.node.stores.journal);
    faults.hold = true;
    const reply = ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'f-m1', date: DATE, total: 99 });
    await waitFor(() => faults!.held.length === 1, 10_000, 'the held journal write');
    await faults.held.shift()!.fail(new StoreUnavailableError('injected: database unreachable'));
    expect(await reply).toEqual({ ok: false, error: 'unavailable', message: expect.any(String), retryAfter_s: 1 });
    faults.restore();
    faults.hold = false;
    expect((await e.client.admin('GET', `/ops/inventory/f-m1/${DATE}`)).body).toMatchObject({ total: 10 });
    expect(lines.some((l) => l.includes('"level":40') && l.includes('stampede.cmd.m1.stock.set'))).toBe(true);
    // And the next request is served as usual.
    expect(await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'f-m1', date: DATE, total: 11 })).toMatchObject({ ok: true, total: 11 });
  });

  it('a bug in a handler is answered internal, without its message, and the service goes on', async () => {
    const services = messagingServicesOf(e.node);
    const buggy: MessagingServices = {
      ...services,
      orders: {
        ...services.orders,
        setStock: (...args) => services.orders.setStock(...args),
        addCardKeys: (...args) => services.orders.addCardKeys(...args),
        orderHistory: (...args) => services.orders.orderHistory(...args),
        deliverManual: (...args) => services.orders.deliverManual(...args),
        inspect: async () => {
          throw new TypeError('secret internals: cannot read properties of undefined');
        },
      },
    };
    const { log, lines } = capturingLogger();
    messaging = await startMessaging(nc, buggy, log);
    const reply = await ask(nc, 'stampede.ops.inventory.get', { skuId: 'f-m1', date: DATE });
    expect(reply).toEqual({ ok: false, error: 'internal', message: 'internal error' });
    expect(lines.some((l) => l.includes('"level":50') && l.includes('secret internals'))).toBe(true);
    expect(await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'f-m1', date: DATE, total: 12 })).toMatchObject({ ok: true, total: 12 });
  });

  it('a merchant past its in-flight bound is refused overloaded at once; another merchant is still served', async () => {
    // The stock.set handler counts the requests that reached it (the bound's, not the one past it).
    const services = messagingServicesOf(e.node);
    const reached = { m1: 0 };
    const counted: MessagingServices = {
      ...services,
      orders: {
        ...services.orders,
        setStock: (...args) => {
          if (args[0] === 'f-m1') reached.m1++;
          return services.orders.setStock(...args);
        },
        addCardKeys: (...args) => services.orders.addCardKeys(...args),
        inspect: (...args) => services.orders.inspect(...args),
        orderHistory: (...args) => services.orders.orderHistory(...args),
        deliverManual: (...args) => services.orders.deliverManual(...args),
      },
    };
    messaging = await startMessaging(nc, counted, capturingLogger().log);
    faults = injectJournalFaults(e.node.stores.journal);
    faults.only = (stream) => stream === `f-m1/${DATE}`;
    faults.hold = true;
    const bound = merchant_command_limits.merchant_in_flight_max;
    const waiting = Array.from({ length: bound }, (_, i) => ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'f-m1', date: DATE, total: 20 + i }));
    await waitFor(() => faults!.held.length >= 1, 10_000, 'a held journal write');
    // Every one of the bound's requests has reached the handler (none can finish: the write is held).
    await waitFor(() => reached.m1 === bound, 10_000, `the ${bound} requests at the handler`);
    // The next is refused without waiting for a slot: the slots are held until after its answer, so
    // an answer at all (before the request's own 10 s deadline) is one that did not queue; and it
    // never reached the handler.
    expect(await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'f-m1', date: DATE, total: 1 })).toMatchObject({ ok: false, error: 'overloaded', retryAfter_s: 1 });
    expect(reached.m1).toBe(bound);
    expect(faults.held.length).toBeGreaterThanOrEqual(1);
    expect(await ask(nc, 'stampede.cmd.m2.stock.set', { skuId: 'f-m2', date: DATE, total: 15 })).toMatchObject({ ok: true, total: 15 });
    faults.hold = false;
    for (const held of faults.held.splice(0)) await held.release();
    const replies = await Promise.all(waiting);
    expect(replies.filter((r) => r.ok !== true)).toEqual([]);
  });

  /** A node's services whose stock.set and card_keys.add wait at `gate` for SKUs named `slow-…`, counting those that reached it. */
  const heldAt = (gate: Promise<void>) => {
    const services = messagingServicesOf(e.node);
    const entered = { count: 0 };
    const hold = async (skuId: string) => {
      if (!skuId.startsWith('slow-')) return;
      entered.count++;
      await gate;
    };
    const held: MessagingServices = {
      ...services,
      orders: {
        setStock: async (...args) => {
          await hold(args[0]);
          return services.orders.setStock(...args);
        },
        addCardKeys: async (...args) => {
          await hold(args[0]);
          return services.orders.addCardKeys(...args);
        },
        inspect: (...args) => services.orders.inspect(...args),
        orderHistory: (...args) => services.orders.orderHistory(...args),
        deliverManual: (...args) => services.orders.deliverManual(...args),
      },
    };
    return { held, entered };
  };

  it("merchants each at their own bound leave another merchant served: four with 16 slow stock.set each, and a fifth's is answered", async () => {
    const merchants = ['m1', 'm2', 'm3', 'm4'];
    for (const m of merchants) await e.client.sku(`slow-${m}`, DATE, 10, { merchantId: m });
    await e.client.sku('fast-m5', DATE, 10, { merchantId: 'm5' });
    let release!: () => void;
    const { held, entered } = heldAt(new Promise<void>((resolve) => (release = releaseGate = resolve)));
    messaging = await startMessaging(nc, held, capturingLogger().log);
    const bound = merchant_command_limits.merchant_in_flight_max;
    const waiting = merchants.flatMap((m) => Array.from({ length: bound }, (_, i) => ask(nc, `stampede.cmd.${m}.stock.set`, { skuId: `slow-${m}`, date: DATE, total: 20 + i })));
    await waitFor(() => entered.count === merchants.length * bound, 10_000, 'every merchant at its bound');
    expect(await ask(nc, 'stampede.cmd.m5.stock.set', { skuId: 'fast-m5', date: DATE, total: 11 })).toMatchObject({ ok: true, total: 11 });
    release();
    const replies = await Promise.all(waiting);
    expect(replies.filter((r) => r.ok !== true)).toEqual([]);
  });

  it("merchants flooding card_keys.add leave another merchant's upload served: four send 16 slow uploads each, past their own bound of uploads", async () => {
    const merchants = ['m1', 'm2', 'm3', 'm4'];
    for (const m of merchants) expect((await e.client.admin('PUT', `/v1/skus/slow-keys-${m}`, { name: 'k', priceCents: 100, merchantId: m, delivery: 'card_key' })).status).toBe(200);
    expect((await e.client.admin('PUT', '/v1/skus/fast-keys-m5', { name: 'k', priceCents: 100, merchantId: 'm5', delivery: 'card_key' })).status).toBe(200);
    let release!: () => void;
    const { held, entered } = heldAt(new Promise<void>((resolve) => (release = releaseGate = resolve)));
    messaging = await startMessaging(nc, held, capturingLogger().log);
    const sent = 16;
    const answers: any[] = [];
    const waiting = merchants.flatMap((m) =>
      Array.from({ length: sent }, (_, i) => ask(nc, `stampede.cmd.${m}.card_keys.add`, { skuId: `slow-keys-${m}`, keys: [`${m}-key-${i}`] }).then((r) => answers.push(r))),
    );
    // Every upload either waits at the gate or is answered.
    await waitFor(() => entered.count + answers.length === merchants.length * sent, 10_000, 'every upload held or answered');
    expect(await ask(nc, 'stampede.cmd.m5.card_keys.add', { skuId: 'fast-keys-m5', keys: ['m5-key'] })).toEqual({ ok: true, added: 1, total: 1 });
    // Each merchant's uploads past its bound were answered overloaded at once.
    const uploads = merchant_command_limits.merchant_card_keys_in_flight_max;
    expect(entered.count).toBe(merchants.length * uploads);
    expect(answers.every((r) => r.ok === false && r.error === 'overloaded')).toBe(true);
    release();
    await Promise.all(waiting);
    expect(answers.filter((r) => r.ok === true)).toHaveLength(merchants.length * uploads);
  });

  it('a publish without a reply subject changes nothing; after stop() nobody answers', async () => {
    messaging = await startMessaging(nc, messagingServicesOf(e.node), capturingLogger().log);
    nc.publish('stampede.cmd.m2.stock.set', new TextEncoder().encode(JSON.stringify({ skuId: 'f-m2', date: DATE, total: 3 })));
    await nc.flush();
    expect(await ask(nc, 'stampede.ops.inventory.get', { skuId: 'f-m2', date: DATE })).toMatchObject({ total: 15 });
    await messaging.stop();
    messaging = undefined;
    const error = (await ask(nc, 'stampede.ops.inventory.get', { skuId: 'f-m2', date: DATE }, { timeout_ms: 2_000 }).catch((e: unknown) => e)) as NatsError;
    expect(error.code).toBe(ErrorCode.NoResponders);
  });
});
