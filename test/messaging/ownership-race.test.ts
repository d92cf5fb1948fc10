// Proves a merchant command checks that the SKU is still the merchant's where it makes the change, not only when the command arrives: an admin's `PUT /v1/skus` giving a SKU without stock to another merchant, landing while m1's stock.set or card_keys.add is on its way (held at a gate after the command's first check) or begun just before it (the admin's write held in the SKU store), leaves m1's command answered `forbidden` with nothing changed — no stock date, no key — on a real node (embedded SQLite) and a nats-server of this file's own.
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messagingServicesOf, startMessaging, type Messaging, type MessagingServices } from '../../messaging/index.ts';
import type { Sku } from '../../persistence/ports.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { waitFor } from '../support/journal-faults.ts';
import { ask, capturingLogger, startOwnNats, type OwnNats } from './support.ts';

const DATE = '2026-12-01';

describe("a merchant command racing an admin's change of the SKU's owner", () => {
  let nats: OwnNats;
  let e: TestEngine;
  let nc: NatsConnection;
  let messaging: Messaging | undefined;
  /** Opens whatever gate a test set, so that a failed test leaves nothing held. */
  let releaseGate: (() => void) | undefined;

  beforeAll(async () => {
    nats = await startOwnNats();
    e = await startEngine({ kind: 'sqlite' });
    nc = await connect({ servers: nats.url, timeout: 2_000 });
  });
  // One messaging instance at a time: two in the queue group would share the requests.
  afterEach(async () => {
    releaseGate?.();
    releaseGate = undefined;
    await messaging?.stop();
    messaging = undefined;
  });
  afterAll(async () => {
    await nc?.close();
    await e?.stop();
    await nats?.stop();
  });

  const putSku = async (skuId: string, merchantId: string, delivery: 'ticket' | 'card_key') =>
    e.client.admin('PUT', `/v1/skus/${skuId}`, { name: skuId, priceCents: 100, merchantId, delivery });

  /** The node's services, whose stock.set and card_keys.add wait at a gate (after the command's first check) and say when they got there. */
  const gated = () => {
    const services = messagingServicesOf(e.node);
    const reached = { count: 0 };
    const gate = new Promise<void>((resolve) => (releaseGate = resolve));
    const held: MessagingServices = {
      ...services,
      orders: {
        setStock: async (...args) => {
          reached.count++;
          await gate;
          return services.orders.setStock(...args);
        },
        addCardKeys: async (...args) => {
          reached.count++;
          await gate;
          return services.orders.addCardKeys(...args);
        },
        inspect: (...args) => services.orders.inspect(...args),
        orderHistory: (...args) => services.orders.orderHistory(...args),
        deliverManual: (...args) => services.orders.deliverManual(...args),
      },
    };
    return { held, reached };
  };

  it('stock.set of m1 on a SKU the admin gives to m2 meanwhile is forbidden, and makes no stock date', async () => {
    expect((await putSku('race-stock', 'm1', 'ticket')).status).toBe(200);
    const { held, reached } = gated();
    messaging = await startMessaging(nc, held, capturingLogger().log);
    const reply = ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'race-stock', date: DATE, total: 50 });
    await waitFor(() => reached.count === 1, 10_000, "m1's stock.set past its first check");
    // No stock yet: the admin may still give the SKU to another merchant.
    expect((await putSku('race-stock', 'm2', 'ticket')).status).toBe(200);
    releaseGate!();
    expect(await reply).toMatchObject({ ok: false, error: 'forbidden' });
    expect((await e.client.admin('GET', `/ops/inventory/race-stock/${DATE}`)).status).toBe(404);
    expect(e.node.catalog.dates('race-stock')).toEqual([]);
    expect(e.node.catalog.sku('race-stock')?.merchantId).toBe('m2');
  });

  it('card_keys.add of m1 on a SKU the admin gives to m2 meanwhile is forbidden, and stores no key', async () => {
    expect((await putSku('race-keys', 'm1', 'card_key')).status).toBe(200);
    const { held, reached } = gated();
    messaging = await startMessaging(nc, held, capturingLogger().log);
    const reply = ask(nc, 'stampede.cmd.m1.card_keys.add', { skuId: 'race-keys', keys: ['RACE-KEY-1', 'RACE-KEY-2'] });
    await waitFor(() => reached.count === 1, 10_000, "m1's card_keys.add past its first check");
    expect((await putSku('race-keys', 'm2', 'card_key')).status).toBe(200);
    releaseGate!();
    expect(await reply).toMatchObject({ ok: false, error: 'forbidden' });
    expect(await e.node.stores.cardKeys.count('race-keys')).toBe(0);
    expect(e.node.catalog.dates('race-keys')).toEqual([]);
  });

  it("a command arriving while the admin's change of owner is being written waits for it, and is then forbidden", async () => {
    for (const [skuId, delivery] of [
      ['race-held-stock', 'ticket'],
      ['race-held-keys', 'card_key'],
    ] as const) {
      expect((await putSku(skuId, 'm1', delivery)).status).toBe(200);
      // The admin's write of the new owner is held in the SKU store: its check (no stock yet) is done,
      // the catalog in memory still says m1.
      const skus = e.node.stores.skus;
      const upsert = skus.upsert.bind(skus);
      let writing = false;
      let release!: () => void;
      const written = new Promise<void>((resolve) => (release = releaseGate = resolve));
      skus.upsert = async (sku: Sku) => {
        if (sku.skuId === skuId) {
          writing = true;
          await written;
        }
        return upsert(sku);
      };
      try {
        const admin = putSku(skuId, 'm2', delivery);
        await waitFor(() => writing, 10_000, "the admin's write of the new owner");
        messaging = await startMessaging(nc, messagingServicesOf(e.node), capturingLogger().log);
        const reply =
          delivery === 'ticket'
            ? ask(nc, 'stampede.cmd.m1.stock.set', { skuId, date: DATE, total: 50 })
            : ask(nc, 'stampede.cmd.m1.card_keys.add', { skuId, keys: ['HELD-KEY-1'] });
        // The node serves on this very connection: m1's command reached it (and passed its first
        // check, m1 being the owner in memory) before the flush is answered. Then the admin's write
        // goes on.
        await nc.flush();
        release();
        const answer = await reply;
        expect((await admin).status).toBe(200);
        expect(answer, skuId).toMatchObject({ ok: false, error: 'forbidden' });
        expect(e.node.catalog.dates(skuId), skuId).toEqual([]);
        expect(await e.node.stores.cardKeys.count(skuId), skuId).toBe(0);
      } finally {
        skus.upsert = upsert;
        await messaging?.stop();
        messaging = undefined;
      }
    }
  });
});
