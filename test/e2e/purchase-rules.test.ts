// Proves per-buyer purchase rules hold under concurrency on the embedded default and on MariaDB +
// Redis: the contract's three example rules refuse exactly what they should with 403 limit_exceeded
// naming the rule, 100 parallel orders of one buyer pass a limit of one exactly once, a race over five
// venues stops at 3 venues and 20 units, cancel and expiry free usage at once, and a sold-out order
// never consumes usage — against a real node over HTTP, reading the buyer's live state from ops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { startEngine, type Client, type TestEngine, engineBackends, restartable, type Backend } from '../support/engine.ts';
import { until } from '../support/poll.ts';

const backends = engineBackends('e2e_rules');

async function venueSku(c: Client, skuId: string, venue: string, region: string, dates: string[], total = 1_000): Promise<void> {
  const put = await c.admin('PUT', `/v1/skus/${skuId}`, { name: skuId, priceCents: 500, merchantId: 'm1', delivery: 'ticket', attributes: { venue, region } });
  expect(put.status).toBe(200);
  for (const date of dates) expect((await c.admin('PUT', `/v1/skus/${skuId}/stock/${date}`, { total })).status).toBe(200);
}

describe.each(backends)('purchase rules on %s', (_name, backend) => {
  let e: TestEngine;
  let restartBackend: Backend | undefined;
  const clock = new ManualClock(Date.parse('2026-12-10T10:00:00Z'));
  beforeAll(async () => {
    restartBackend = restartable(await backend());
    e = await startEngine(restartBackend!, { STAMPEDE_RESERVATION_TTL_MS: '60000' }, clock);
    const c = e.client;
    expect((await c.admin('PUT', '/v1/limit-rules/venue-date', { id: 'venue-date', groupBy: ['venue', 'date'], max: { units: 1 } })).status).toBe(200);
    expect(
      (await c.admin('PUT', '/v1/limit-rules/region-week', { id: 'region-week', groupBy: ['region'], window: { rollingDays: 7 }, max: { units: 20, distinct: { venue: 3 } } }))
        .status,
    ).toBe(200);
    for (let v = 1; v <= 5; v++) await venueSku(c, `park-${v}`, `venue-${v}`, 'north', ['2026-12-20', '2026-12-21', '2026-12-22']);
    await venueSku(c, 'tiny', 'venue-tiny', 'south', ['2026-12-20'], 1);
  });
  afterAll(async () => e?.stop());

  const order = (user: string, skuId: string, date: string, qty = 1) => e.client.buyer(user, 'POST', '/v1/orders', { skuId, date, qty });

  it('100 parallel orders of one buyer for one venue and date: exactly one 201, the rest 403 naming venue-date', async () => {
    const answers = await Promise.all(Array.from({ length: 100 }, () => order('racer', 'park-1', '2026-12-20')));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    const refused = answers.filter((a) => a.status === 403);
    expect(refused).toHaveLength(99);
    for (const a of refused) expect(a.body).toMatchObject({ error: 'limit_exceeded', rule: 'venue-date' });
    const state = (await e.client.admin('GET', '/ops/buyers/racer')).body;
    expect(state.holds).toHaveLength(1);
    expect(state.holds[0].createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/); // API.md: times are ISO-8601 UTC strings
    expect(state.usage.find((u: { ruleId: string }) => u.ruleId === 'venue-date').groups).toEqual([
      { group: { venue: 'venue-1', date: '2026-12-20' }, units: 1, orders: 1, distinct: {}, noShows: 0 },
    ]);
    // Another date of the same venue is another group.
    expect((await order('racer', 'park-1', '2026-12-21')).status).toBe(201);
  });

  it('a buyer racing orders over 5 venues of a region gets at most 3 venues and 20 units', async () => {
    const tries = [];
    for (let v = 1; v <= 5; v++) for (const date of ['2026-12-20', '2026-12-21', '2026-12-22']) tries.push(order('roamer', `park-${v}`, date, 1 + ((v + date.length) % 3)));
    const answers = await Promise.all(tries);
    const ok = answers.filter((a) => a.status === 201).map((a) => a.body);
    const venues = new Set(ok.map((o: { skuId: string }) => o.skuId));
    const units = ok.reduce((n: number, o: { qty: number }) => n + o.qty, 0);
    expect(venues.size).toBeLessThanOrEqual(3);
    expect(units).toBeLessThanOrEqual(20);
    expect(ok.length).toBeGreaterThan(0);
    for (const a of answers.filter((x) => x.status !== 201)) {
      expect(a.status).toBe(403);
      expect(['region-week', 'venue-date']).toContain(a.body.rule);
    }
    const usage = (await e.client.admin('GET', '/ops/buyers/roamer')).body.usage.find((u: { ruleId: string }) => u.ruleId === 'region-week');
    expect(usage.groups).toEqual([{ group: { region: 'north' }, units, orders: ok.length, distinct: { venue: venues.size }, noShows: 0 }]);
  });

  it('cancel frees usage at once, and so does expiry: the next order succeeds right after', async () => {
    const first = await order('canceller', 'park-2', '2026-12-22');
    expect(first.status).toBe(201);
    expect((await order('canceller', 'park-2', '2026-12-22')).status).toBe(403);
    expect((await e.client.buyer('canceller', 'POST', `/v1/orders/${first.body.orderId}/cancel`)).body.status).toBe('cancelled');
    const second = await order('canceller', 'park-2', '2026-12-22');
    expect(second.status).toBe(201);

    clock.advance(61_000);
    await until('expiry', () => e.client.buyer('canceller', 'GET', `/v1/orders/${second.body.orderId}`), (a) => a.body.status === 'expired', 10_000);
    // Expiry released the usage as soon as it was durable.
    await until('usage released', async () => (await order('canceller', 'park-2', '2026-12-22')).status, (s) => s === 201, 5_000);
  });

  it('a free order, sold with its reservation, is counted for good (not left as a hold)', async () => {
    const put = await e.client.admin('PUT', '/v1/skus/free-park', { name: 'free', priceCents: 0, merchantId: 'm1', delivery: 'ticket', attributes: { venue: 'venue-free', region: 'west' } });
    expect(put.status).toBe(200);
    expect((await e.client.admin('PUT', '/v1/skus/free-park/stock/2026-12-20', { total: 10 })).status).toBe(200);
    const o = await order('freebie', 'free-park', '2026-12-20');
    expect(o.status).toBe(201);
    const state = await until('counted', async () => (await e.client.admin('GET', '/ops/buyers/freebie')).body, (b) => b.counted.length === 1, 5_000);
    expect(state.holds).toEqual([]);
    expect(state.counted.map((x: { orderId: string }) => x.orderId)).toEqual([o.body.orderId]);
  });

  it('a sold-out order never consumes usage', async () => {
    expect((await order('early', 'tiny', '2026-12-20')).status).toBe(201);
    const late = await order('late', 'tiny', '2026-12-20');
    expect([late.status, late.body.error]).toEqual([409, 'sold_out']);
    const state = (await e.client.admin('GET', '/ops/buyers/late')).body;
    expect(state.holds).toEqual([]);
    expect(state.usage).toEqual([]);
  });

  it('a restart keeps every buyer\'s usage (the limit streams are not mistaken for SKU/dates)', async () => {
    expect((await order('restarter', 'park-4', '2026-12-21')).status).toBe(201);
    const before = (await e.client.admin('GET', '/ops/buyers/restarter')).body;
    expect(before.holds).toHaveLength(1);
    await e.stop();
    e = await startEngine(restartBackend!, { STAMPEDE_RESERVATION_TTL_MS: '60000' }, clock);
    const after = (await e.client.admin('GET', '/ops/buyers/restarter')).body;
    expect(after.holds).toEqual(before.holds);
    expect(after.usage).toEqual(before.usage);
    expect((await order('restarter', 'park-4', '2026-12-21')).body).toMatchObject({ error: 'limit_exceeded', rule: 'venue-date' });
  });

  it('a sold-out order\'s hold is released at once, journaled with the buyer\'s next write, and settled at load if never written', async () => {
    await venueSku(e.client, 'last-1', 'venue-last', 'west', ['2026-12-23'], 1);
    await venueSku(e.client, 'last-2', 'venue-last', 'west', ['2026-12-23'], 5);
    await venueSku(e.client, 'last-3', 'venue-last-3', 'west', ['2026-12-23'], 1);
    const types = async (user: string) => (await e.node.stores.journal.readAfter(`@b/${user}`, 0)).flatMap((r) => r.events.map((ev) => (ev as { type: string }).type));
    // Two buyers race for the last unit while it still looks available: both hold, one is sold out.
    const race = async (skuId: string, a: string, b: string): Promise<string> => {
      const [x, y] = await Promise.all([order(a, skuId, '2026-12-23'), order(b, skuId, '2026-12-23')]);
      expect([x.status, y.status].sort()).toEqual([201, 409]);
      return x.status === 409 ? a : b;
    };

    // Sold out: the hold is released in memory (the buyer's usage is free now), not written on its own.
    const late1 = await race('last-1', 'racer-1a', 'racer-1b');
    await until('the release decided', async () => (await e.client.admin('GET', `/ops/buyers/${late1}`)).body.holds, (h) => h.length === 0);
    expect(await types(late1)).toEqual(['held']);
    // The buyer's next order passes venue-date (the same venue and date) and writes the release first.
    expect((await order(late1, 'last-2', '2026-12-23')).status).toBe(201);
    expect(await types(late1)).toEqual(['held', 'released', 'held']);

    // Never written (a restart before the buyer came back): the durable hold is settled at load.
    const late2 = await race('last-3', 'racer-2a', 'racer-2b');
    await until('the release decided', async () => (await e.client.admin('GET', `/ops/buyers/${late2}`)).body.holds, (h) => h.length === 0);
    await e.stop();
    e = await startEngine(restartBackend!, { STAMPEDE_RESERVATION_TTL_MS: '60000' }, clock);
    expect((await e.client.admin('GET', `/ops/buyers/${late2}`)).body.holds).toEqual([]);
    expect((await order(late2, 'last-2', '2026-12-23')).status).toBe(201);
    expect(await types(late2)).toEqual(['held', 'released', 'held']);
  });

  it('once a SKU/date is known sold out, an order is refused without touching the buyer\'s limits; stock coming back takes the saga again', async () => {
    await venueSku(e.client, 'gone', 'venue-gone', 'east', ['2026-12-24'], 1);
    const types = async (user: string) => (await e.node.stores.journal.readAfter(`@b/${user}`, 0)).flatMap((r) => r.events.map((ev) => (ev as { type: string }).type));
    const first = await order('owner', 'gone', '2026-12-24');
    expect(first.status).toBe(201);
    const keyed = () => e.client.buyer('knocker', 'POST', '/v1/orders', { skuId: 'gone', date: '2026-12-24', qty: 1 }, { 'Idempotency-Key': 'knock-1' });
    const refused = await keyed();
    expect([refused.status, refused.body.error]).toEqual([409, 'sold_out']);
    expect((await order('knocker', 'gone', '2026-12-24')).status).toBe(409);
    // No hold was taken, so nothing was journaled for the buyer and its live state is empty.
    expect(await types('knocker')).toEqual([]);
    expect((await e.client.admin('GET', '/ops/buyers/knocker')).body).toMatchObject({ holds: [], counted: [], journalSeq: 0 });

    // The stock comes back (a cancel): the next order holds, reserves and counts.
    expect((await e.client.buyer('owner', 'POST', `/v1/orders/${first.body.orderId}/cancel`)).body.status).toBe('cancelled');
    // The refused Idempotency-Key still replays its first answer.
    expect((await keyed()).body.error).toBe('sold_out');
    const again = await order('knocker', 'gone', '2026-12-24');
    expect(again.status).toBe(201);
    expect(await types('knocker')).toEqual(['held']);
    expect((await e.client.admin('GET', '/ops/buyers/knocker')).body.holds.map((h: { orderId: string }) => h.orderId)).toEqual([again.body.orderId]);
    // Its usage counts: venue-date refuses the same buyer now (the stock is gone again, so sold out comes first).
    expect((await order('knocker', 'gone', '2026-12-24')).body.error).toBe('sold_out');
    expect((await e.client.admin('PUT', '/v1/skus/gone/stock/2026-12-24', { total: 2 })).status).toBe(200);
    expect((await order('knocker', 'gone', '2026-12-24')).body).toMatchObject({ error: 'limit_exceeded', rule: 'venue-date' });
  });

  it('a rule change applies to the next order', async () => {
    expect((await order('changer', 'park-3', '2026-12-20')).status).toBe(201);
    expect((await e.client.admin('DELETE', '/v1/limit-rules/venue-date')).status).toBe(204);
    expect((await order('changer', 'park-3', '2026-12-20')).status).toBe(201);
    expect((await e.client.admin('PUT', '/v1/limit-rules/venue-date', { id: 'venue-date', groupBy: ['venue', 'date'], max: { units: 1 } })).status).toBe(200);
    const again = await order('changer', 'park-3', '2026-12-20');
    expect([again.status, again.body.rule]).toEqual([403, 'venue-date']);
  });

  it('an attribute named in any script is a dimension like any other (match, groupBy, distinct)', async () => {
    const c = e.client;
    for (const [skuId, spot] of [['west-lake-a', '西湖'], ['west-lake-b', '西湖'], ['summer-palace', '颐和园']] as const) {
      const put = await c.admin('PUT', `/v1/skus/${skuId}`, { name: skuId, priceCents: 500, merchantId: 'm1', delivery: 'ticket', attributes: { 景区: spot, 'ticket kind': 'adult' } });
      expect([put.status, put.body.attributes]).toEqual([200, { 景区: spot, 'ticket kind': 'adult' }]);
      expect((await c.admin('PUT', `/v1/skus/${skuId}/stock/2026-12-20`, { total: 10 })).status).toBe(200);
    }
    const rule = { id: 'one-per-spot', match: { attributes: { 'ticket kind': 'adult' } }, groupBy: ['ticket kind', 'date'], max: { units: 2, distinct: { 景区: 1 } } };
    expect((await c.admin('PUT', '/v1/limit-rules/one-per-spot', rule)).body).toEqual(rule);
    try {
      // Two tickets of one spot (through two SKUs): one distinct 景区; a second spot would make two.
      expect((await order('tourist', 'west-lake-a', '2026-12-20')).status).toBe(201);
      expect((await order('tourist', 'west-lake-b', '2026-12-20')).status).toBe(201);
      const otherSpot = await order('tourist', 'summer-palace', '2026-12-20');
      expect([otherSpot.status, otherSpot.body.rule]).toEqual([403, 'one-per-spot']);
      const usage = (await c.admin('GET', '/ops/buyers/tourist')).body.usage.find((u: { ruleId: string }) => u.ruleId === 'one-per-spot');
      expect(usage.groups).toEqual([{ group: { 'ticket kind': 'adult', date: '2026-12-20' }, units: 2, orders: 2, distinct: { 景区: 1 }, noShows: 0 }]);
    } finally {
      expect((await c.admin('DELETE', '/v1/limit-rules/one-per-spot')).status).toBe(204);
    }
  });
});
