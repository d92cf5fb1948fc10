// Proves a merchant cannot have the engine answer into the engine's own inboxes — where the stream's acks of its event publishes come back — and so cannot stall the events of every merchant: on a nats-server of this file's own running docker/nats/nats.conf, merchant m1 (subscribed to its own event subjects, so it sees the reply subject of each publish) aims empty commands at those reply subjects and at the ones a counter would give next; the node answers none of them there (an engine-user watcher of `_INBOX.>` sees no command answer), still answers m1 on its own inbox, and m1's events keep coming.
import { connect, type Msg, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { until } from '../support/poll.ts';
import { ask, NATS_CONF_PATH, startOwnNats, TEST_NATS_PASSWORDS, type OwnNats } from './support.ts';

const DATE = '2026-12-01';
const SKU = 'inbox-m1';
const decoder = new TextDecoder();

describe("a merchant aiming replies at the engine's inbox", () => {
  let nats: OwnNats;
  let e: TestEngine;
  let m1: NatsConnection;
  let watcher: NatsConnection;
  /** What m1 sees on `stampede.evt.m1.>`: each event's order id and the reply subject it was published with. */
  const events: { orderId: string; reply: string | undefined }[] = [];
  /** Command answers (bodies with `ok`) published anywhere under `_INBOX.`: none may be there. */
  const answersInEngineInboxes: string[] = [];

  beforeAll(async () => {
    nats = await startOwnNats({ config: NATS_CONF_PATH, env: TEST_NATS_PASSWORDS });
    e = await startEngine(
      { kind: 'sqlite' },
      { STAMPEDE_NATS_URL: nats.url, STAMPEDE_NATS_USER: 'stampede-engine', STAMPEDE_NATS_PASSWORD: TEST_NATS_PASSWORDS.STAMPEDE_NATS_ENGINE_PASSWORD },
    );
    await e.client.sku(SKU, DATE, 100);
    m1 = await connect({ servers: nats.url, user: 'm1', pass: TEST_NATS_PASSWORDS.STAMPEDE_NATS_M1_PASSWORD, inboxPrefix: '_INBOX_m1', timeout: 2_000 });
    m1.subscribe('stampede.evt.m1.>', {
      callback: (_error, msg: Msg) => events.push({ orderId: JSON.parse(decoder.decode(msg.data)).orderId, reply: msg.reply }),
    });
    await m1.flush();
    watcher = await connect({ servers: nats.url, user: 'stampede-engine', pass: TEST_NATS_PASSWORDS.STAMPEDE_NATS_ENGINE_PASSWORD, timeout: 2_000 });
    watcher.subscribe('_INBOX.>', {
      callback: (_error, msg: Msg) => {
        let body: unknown;
        try {
          body = JSON.parse(decoder.decode(msg.data));
        } catch {
          return;
        }
        if (body !== null && typeof body === 'object' && 'ok' in body) answersInEngineInboxes.push(`${msg.subject} ${decoder.decode(msg.data)}`);
      },
    });
    await watcher.flush();
  });
  afterAll(async () => {
    await m1?.close();
    await watcher?.close();
    await e?.stop();
    await nats?.stop();
  });

  const order = async (buyer: string): Promise<string> => {
    const placed = await e.client.buyer(buyer, 'POST', '/v1/orders', { skuId: SKU, date: DATE, qty: 1 });
    expect(placed.status).toBe(201);
    return placed.body.orderId;
  };

  it('gets no answer published there, and the events keep coming', async () => {
    const first = await order('u-inbox-1');
    const seen = await until('m1 to see its first event', async () => events.find((ev) => ev.orderId === first), (ev) => ev !== undefined);
    // The leak itself: m1 sees where the engine expects the stream's ack of this event.
    expect(seen!.reply).toMatch(/^_INBOX\./);

    // Empty commands (answered invalid_request at once) with the reply subject seen, and the ones a
    // counter would give next.
    const targets = new Set<string>([seen!.reply!]);
    const tokens = seen!.reply!.split('.');
    const last = Number(tokens.at(-1));
    if (Number.isInteger(last)) for (let n = last + 1; n <= last + 50; n++) targets.add([...tokens.slice(0, -1), String(n)].join('.'));
    for (const target of targets) m1.publish('stampede.cmd.m1.stock.set', new Uint8Array(), { reply: target });
    // Sent after them on the same connection, so answered after them: once m1 has this answer, any
    // answer to the ones above has reached the server before it.
    expect(await ask(m1, 'stampede.cmd.m1.stock.set', '', { raw: true })).toMatchObject({ ok: false, error: 'invalid_request' });
    await watcher.flush();
    expect(answersInEngineInboxes).toEqual([]);

    // Events keep flowing for m1 (and would for every merchant: they share the publisher).
    const later = await Promise.all([order('u-inbox-2'), order('u-inbox-3')]);
    await until('m1 to see the later events', async () => later.filter((id) => events.some((ev) => ev.orderId === id)).length, (n) => n === later.length);
    expect(await ask(m1, 'stampede.cmd.m1.stock.set', { skuId: SKU, date: DATE, total: 100 })).toMatchObject({ ok: true, total: 100 });
  });
});
