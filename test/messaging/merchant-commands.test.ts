// Proves the merchant commands over NATS request/reply — stock.set and card_keys.add answer the HTTP routes' bodies for the SKU's owner, another merchant is refused `forbidden` with nothing changed, bad JSON / ids / limits are `invalid_request` with details, card keys are never in a reply or a log line, and order.deliver delivers the owner's paid manual order (the buyer sees the payload) and refuses unpaid, other merchants' and unknown orders — against a real node (embedded SQLite) on a nats-server of this file's own.
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderIdFor } from '../../engine/index.ts';
import { messagingServicesOf, startMessaging, type Messaging } from '../../messaging/index.ts';
import { merchantOf } from '../../messaging/merchant-commands.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { ask, askText, capturingLogger, startOwnNats, type OwnNats } from './support.ts';

const DATE = '2026-12-01';

describe('merchant commands over NATS', () => {
  let nats: OwnNats;
  let e: TestEngine;
  let nc: NatsConnection;
  let messaging: Messaging;
  const { log, lines } = capturingLogger();

  beforeAll(async () => {
    nats = await startOwnNats();
    e = await startEngine({ kind: 'sqlite' });
    nc = await connect({ servers: nats.url, timeout: 2_000 });
    messaging = await startMessaging(nc, messagingServicesOf(e.node), log);
    const sku = async (skuId: string, merchantId: string, delivery: string) => {
      const put = await e.client.admin('PUT', `/v1/skus/${skuId}`, { name: skuId, priceCents: 1999, merchantId, delivery });
      expect(put.status).toBe(200);
    };
    await sku('t-m1', 'm1', 'ticket');
    await sku('t-m2', 'm2', 'ticket');
    await sku('k-m1', 'm1', 'card_key');
    await sku('man-m1', 'm1', 'manual');
  });
  afterAll(async () => {
    await messaging?.stop();
    await nc?.close();
    await e?.stop();
    await nats?.stop();
  });

  const inventory = async (skuId: string, date: string) => e.client.admin('GET', `/ops/inventory/${skuId}/${date}`);

  it('stock.set by the owner answers {ok:true, ...} with the body of PUT /v1/skus/{skuId}/stock/{date}', async () => {
    const viaNats = await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 't-m1', date: DATE, total: 10 });
    expect(viaNats).toEqual({ ok: true, skuId: 't-m1', date: DATE, total: 10, reserved: 0, sold: 0, available: 10 });
    const viaHttp = await e.client.admin('PUT', `/v1/skus/t-m1/stock/${DATE}`, { total: 10 });
    expect({ ok: true, ...viaHttp.body }).toEqual(viaNats);
    expect((await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 't-m1', date: DATE, total: 12 })).total).toBe(12);
    expect((await inventory('t-m1', DATE)).body).toMatchObject({ total: 12, available: 12 });
  });

  it("stock.set on another merchant's SKU is forbidden and changes nothing, not even a new date", async () => {
    await ask(nc, 'stampede.cmd.m2.stock.set', { skuId: 't-m2', date: DATE, total: 5 });
    const refused = await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 't-m2', date: DATE, total: 500 });
    expect(refused).toMatchObject({ ok: false, error: 'forbidden' });
    expect(typeof refused.message).toBe('string');
    expect(refused.message).not.toContain('merchant m2'); // the owner is not named
    expect((await inventory('t-m2', DATE)).body).toMatchObject({ total: 5 });
    expect(await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 't-m2', date: '2026-12-24', total: 1 })).toMatchObject({ ok: false, error: 'forbidden' });
    expect((await inventory('t-m2', '2026-12-24')).status).toBe(404);
  });

  it('stock.set answers not_found for an unknown SKU and invalid_state below what is taken, as HTTP does', async () => {
    expect(await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'no-such-sku', date: DATE, total: 1 })).toMatchObject({ ok: false, error: 'not_found' });
    await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 't-m1', date: '2026-12-02', total: 5 });
    expect((await e.client.buyer('u-taken', 'POST', '/v1/orders', { skuId: 't-m1', date: '2026-12-02', qty: 3 })).status).toBe(201);
    const lowered = await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 't-m1', date: '2026-12-02', total: 2 });
    const viaHttp = await e.client.admin('PUT', `/v1/skus/t-m1/stock/2026-12-02`, { total: 2 });
    expect(viaHttp.status).toBe(409);
    expect(lowered).toEqual({ ok: false, ...viaHttp.body });
    expect(lowered.error).toBe('invalid_state');
  });

  it('card_keys.add stores the keys (duplicates ignored), grows the `open` stock, and never echoes or logs a key', async () => {
    const keys = ['SECRET-KEY-aaa-111', 'SECRET-KEY-bbb-222', 'SECRET-KEY-bbb-222'];
    const text = await askText(nc, 'stampede.cmd.m1.card_keys.add', { skuId: 'k-m1', keys });
    expect(JSON.parse(text)).toEqual({ ok: true, added: 2, total: 2 });
    expect(await ask(nc, 'stampede.cmd.m1.card_keys.add', { skuId: 'k-m1', keys: ['SECRET-KEY-aaa-111'] })).toEqual({ ok: true, added: 0, total: 2 });
    expect((await inventory('k-m1', 'open')).body).toMatchObject({ total: 2, available: 2 });

    // Refusals and bad bodies that carry keys do not echo them either.
    const foreign = await askText(nc, 'stampede.cmd.m2.card_keys.add', { skuId: 'k-m1', keys: ['SECRET-KEY-ccc-333'] });
    expect(JSON.parse(foreign)).toMatchObject({ ok: false, error: 'forbidden' });
    const malformed = await askText(nc, 'stampede.cmd.m1.card_keys.add', '{"skuId":"k-m1","keys":["SECRET-KEY-ddd-444",x]}', { raw: true });
    expect(JSON.parse(malformed)).toMatchObject({ ok: false, error: 'invalid_request' });
    const tooLong = await askText(nc, 'stampede.cmd.m1.card_keys.add', { skuId: 'k-m1', keys: ['SECRET-KEY-eee-555'.padEnd(257, 'x')] });
    expect(JSON.parse(tooLong)).toMatchObject({ ok: false, error: 'invalid_request', details: [{ path: ['keys', 0] }] });
    for (const reply of [text, foreign, malformed, tooLong]) expect(reply).not.toMatch(/SECRET-KEY/);
    expect(await e.node.stores.cardKeys.count('k-m1')).toBe(2);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toMatch(/SECRET-KEY/);
  });

  it('card_keys.add allows 10,000 keys and refuses 10,001; a ticket SKU takes no keys', async () => {
    const many = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`);
    const refused = await ask(nc, 'stampede.cmd.m1.card_keys.add', { skuId: 'k-m1', keys: many(10_001, 'b') });
    expect(refused).toMatchObject({ ok: false, error: 'invalid_request', details: [{ path: ['keys'] }] });
    expect(await ask(nc, 'stampede.cmd.m1.card_keys.add', { skuId: 'k-m1', keys: many(10_000, 'a') })).toEqual({ ok: true, added: 10_000, total: 10_002 });
    expect(await ask(nc, 'stampede.cmd.m1.card_keys.add', { skuId: 't-m1', keys: ['x'] })).toMatchObject({ ok: false, error: 'invalid_state' });
  });

  it('bad JSON, bad ids, bad values and oversized bodies are invalid_request with details', async () => {
    const cases: [string, unknown, boolean, (string | number)[]][] = [
      ['stampede.cmd.m1.stock.set', '{"skuId": "t-m1", ', true, []],
      ['stampede.cmd.m1.stock.set', '', true, []],
      ['stampede.cmd.m1.stock.set', new Uint8Array([0x7b, 0xff, 0x7d]), true, []],
      ['stampede.cmd.m1.stock.set', { skuId: 'bad id!', date: DATE, total: 1 }, false, ['skuId']],
      ['stampede.cmd.m1.stock.set', { skuId: 't-m1', date: '2026-02-30', total: 1 }, false, ['date']],
      ['stampede.cmd.m1.stock.set', { skuId: 't-m1', date: DATE, total: -1 }, false, ['total']],
      ['stampede.cmd.m1.stock.set', { skuId: 't-m1', date: DATE }, false, ['total']],
      ['stampede.cmd.m1.stock.set', [1, 2], false, []],
      ['stampede.cmd.m1.card_keys.add', { skuId: 'k-m1', keys: [] }, false, ['keys']],
      ['stampede.cmd.m1.order.deliver', { orderId: 'x y', payload: {} }, false, ['orderId']],
      ['stampede.cmd.m1.order.deliver', { orderId: 'o1' }, false, ['payload']],
      ['stampede.cmd.m1.order.deliver', { orderId: 'o1', payload: null }, false, ['payload']],
      ['stampede.cmd.m$1.stock.set', { skuId: 't-m1', date: DATE, total: 1 }, false, ['subject', 'merchantId']],
    ];
    for (const [subject, body, raw, path] of cases) {
      const reply = await ask(nc, subject, body, { raw });
      expect(reply, `${subject} ${String(body)}`).toMatchObject({ ok: false, error: 'invalid_request' });
      expect(reply.details?.[0]?.path, `${subject} ${JSON.stringify(body)}`).toEqual(path);
    }
    const big = await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 't-m1', date: DATE, total: 1, pad: 'x'.repeat(64 * 1024) });
    expect(big).toMatchObject({ ok: false, error: 'invalid_request', details: [{ limitBytes: 64 * 1024 }] });
    expect((await inventory('t-m1', DATE)).body).toMatchObject({ total: 12 });
  });

  it('order.deliver by the owner delivers a paid manual order: the buyer sees the payload, its retry is answered ok, another payload is invalid_state', async () => {
    await ask(nc, 'stampede.cmd.m1.stock.set', { skuId: 'man-m1', date: DATE, total: 3 });
    const placed = await e.client.buyer('u-manual', 'POST', '/v1/orders', { skuId: 'man-m1', date: DATE, qty: 1 });
    expect(placed.status).toBe(201);
    const { orderId, amountCents } = placed.body;
    // Not paid yet: nothing to deliver.
    expect(await ask(nc, 'stampede.cmd.m1.order.deliver', { orderId, payload: { code: 'EARLY' } })).toMatchObject({ ok: false, error: 'invalid_state' });
    expect((await e.client.pay({ orderId, paymentId: 'pay-manual', amountCents, status: 'succeeded' })).body).toEqual({ orderId, status: 'paid' });
    // A payload nested thousands deep is refused at the door (it could not be journaled: JSON.stringify
    // runs out of stack, and in a journal write shared with other actors that failed their writes too).
    const nested = `{"orderId":"${orderId}","payload":${'['.repeat(8_000)}1${']'.repeat(8_000)}}`;
    expect(JSON.parse(await askText(nc, 'stampede.cmd.m1.order.deliver', nested, { raw: true }))).toMatchObject({ ok: false, error: 'invalid_request' });

    // Within the 64 KiB body, but four times that as the read model would store it (1e20 becomes 21
    // digits): refused, nothing changed (stored, it stopped the projector for good).
    const growing = `{"orderId":"${orderId}","payload":[${Array(12_000).fill('1e20').join(',')}]}`;
    expect(Buffer.byteLength(growing)).toBeLessThan(64 * 1024);
    expect(JSON.parse(await askText(nc, 'stampede.cmd.m1.order.deliver', growing, { raw: true }))).toMatchObject({ ok: false, error: 'invalid_request' });
    expect((await e.client.buyer('u-manual', 'GET', `/v1/orders/${orderId}`)).body.status).toBe('paid');
    // A number out of JSON's range (parsed as Infinity, stored as null): refused, not delivered as nothing.
    for (const huge of ['1e400', '{"n":[-1e400]}']) {
      const text = `{"orderId":"${orderId}","payload":${huge}}`;
      expect(JSON.parse(await askText(nc, 'stampede.cmd.m1.order.deliver', text, { raw: true }))).toMatchObject({ ok: false, error: 'invalid_request' });
    }
    expect((await e.client.buyer('u-manual', 'GET', `/v1/orders/${orderId}`)).body.status).toBe('paid');

    const payload = { code: 'TOUR-SECRET-7731', meet: 'North gate, 9:00' };
    const delivered = await ask(nc, 'stampede.cmd.m1.order.deliver', { orderId, payload });
    expect(delivered).toMatchObject({ ok: true, orderId, status: 'delivered', skuId: 'man-m1', date: DATE, qty: 1 });
    expect(delivered).not.toHaveProperty('delivery');
    const seen = await e.client.buyer('u-manual', 'GET', `/v1/orders/${orderId}`);
    expect(seen.body).toMatchObject({ status: 'delivered', delivery: { payload } });

    // The merchant's retry of that delivery (its reply lost), keys in any order: the same answer, nothing changed.
    expect(await ask(nc, 'stampede.cmd.m1.order.deliver', { orderId, payload: { meet: payload.meet, code: payload.code } })).toMatchObject({ ok: true, orderId, status: 'delivered' });
    expect(await ask(nc, 'stampede.cmd.m1.order.deliver', { orderId, payload: { code: 'AGAIN' } })).toMatchObject({ ok: false, error: 'invalid_state' });
    expect(await ask(nc, 'stampede.cmd.m2.order.deliver', { orderId, payload: { code: 'M2' } })).toMatchObject({ ok: false, error: 'forbidden' });
    expect((await e.client.buyer('u-manual', 'GET', `/v1/orders/${orderId}`)).body.delivery).toEqual({ payload });
    expect(lines.join('\n')).not.toContain('TOUR-SECRET');
  });

  it('takes the merchant from a command subject only: a JetStream push delivery keeps its event subject and is refused', () => {
    expect(merchantOf('stampede.cmd.m1.stock.set', 'stock.set')).toBe('m1');
    for (const subject of ['stampede.evt.m1.order.paid', 'stampede.cmd.m1.card_keys.add', 'stampede.cmd.m1.stock.set.x', 'other.cmd.m1.stock.set']) {
      expect(() => merchantOf(subject, 'stock.set'), subject).toThrow(/not a stock.set command subject/);
    }
  });

  it("order.deliver refuses an unknown order (not_found) and another merchant's order (forbidden) before asking the engine", async () => {
    await ask(nc, 'stampede.cmd.m2.stock.set', { skuId: 't-m2', date: DATE, total: 5 });
    const placed = await e.client.buyer('u-deliver', 'POST', '/v1/orders', { skuId: 't-m2', date: DATE, qty: 1 });
    expect(placed.status).toBe(201);
    const foreign = await ask(nc, 'stampede.cmd.m1.order.deliver', { orderId: placed.body.orderId, payload: { code: 'X' } });
    expect(foreign).toMatchObject({ ok: false, error: 'forbidden' });
    expect((await e.client.admin('GET', `/ops/orders/${placed.body.orderId}`)).body.status).toBe('reserved');

    expect(await ask(nc, 'stampede.cmd.m1.order.deliver', { orderId: 'not-an-order-id', payload: 1 })).toMatchObject({ ok: false, error: 'not_found' });
    // Well formed, but its stream number belongs to no SKU/date.
    const unrouted = orderIdFor(Date.now(), { bytes: (n) => new Uint8Array(n).fill(7) }, 999_999);
    expect(await ask(nc, 'stampede.cmd.m1.order.deliver', { orderId: unrouted, payload: 1 })).toMatchObject({ ok: false, error: 'not_found' });
  });
});
