// Proves the order path over HTTP on both the embedded default (SQLite) and MariaDB + Redis: a
// flash sale of 3,000 buyers for 1,000 units sells exactly 1,000, idempotency keys replay, bad
// input changes nothing, and cancel/expiry release stock — all against a real node on a real port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { SECRETS, startEngine, type TestEngine, engineBackends } from '../support/engine.ts';

const backends = engineBackends('e2e_order_path');

describe.each(backends)('order path on %s', (_name, backend) => {
  let e: TestEngine;
  const clock = new ManualClock(Date.now());
  beforeAll(async () => {
    e = await startEngine(await backend(), { STAMPEDE_RESERVATION_TTL_MS: '60000' }, clock);
  });
  afterAll(async () => e?.stop());

  it('sells exactly the stock to 3,000 parallel buyers and refuses the rest as sold_out', async () => {
    const c = e.client;
    await c.sku('hot', '2026-12-01', 1_000);
    const answers = await Promise.all(
      Array.from({ length: 3_000 }, (_, i) => c.buyer(`buyer-${i}`, 'POST', '/v1/orders', { skuId: 'hot', date: '2026-12-01', qty: 1 })),
    );
    const created = answers.filter((a) => a.status === 201);
    const soldOut = answers.filter((a) => a.status === 409 && a.body.error === 'sold_out');
    expect(created).toHaveLength(1_000);
    expect(soldOut).toHaveLength(2_000);
    expect(new Set(created.map((a) => a.body.orderId)).size).toBe(1_000);
    const ops = await c.admin('GET', '/ops/inventory/hot/2026-12-01');
    expect(ops.status).toBe(200);
    expect(ops.body).toMatchObject({ skuId: 'hot', date: '2026-12-01', total: 1_000, reserved: 1_000, sold: 0, available: 0, node: 'node-1' });
    expect(ops.body.journalSeq).toBeGreaterThanOrEqual(1_001);
    const first = created[0]!.body;
    expect(first).toMatchObject({ status: 'reserved', skuId: 'hot', date: '2026-12-01', qty: 1, amountCents: 1999 });
    // The owner can read it; another buyer gets 404.
    const owner = answers.indexOf(created[0]!);
    const mine = await c.buyer(`buyer-${owner}`, 'GET', `/v1/orders/${first.orderId}`);
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ orderId: first.orderId, status: 'reserved' });
    expect((await c.buyer('someone-else', 'GET', `/v1/orders/${first.orderId}`)).status).toBe(404);
  });

  it('replays an Idempotency-Key, refuses it with another body, and makes one order from 50 parallel requests', async () => {
    const c = e.client;
    await c.sku('idem', '2026-12-02', 10);
    const order = { skuId: 'idem', date: '2026-12-02', qty: 2 };
    const racing = await Promise.all(Array.from({ length: 50 }, () => c.buyer('alice', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'k-1' })));
    expect(racing.every((a) => a.status === 201)).toBe(true);
    expect(new Set(racing.map((a) => a.body.orderId)).size).toBe(1);
    const again = await c.buyer('alice', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'k-1' });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(racing[0]!.body);
    const other = await c.buyer('alice', 'POST', '/v1/orders', { ...order, qty: 3 }, { 'Idempotency-Key': 'k-1' });
    expect(other.status).toBe(422);
    expect(other.body.error).toBe('idempotency_key_reused');
    // Another body, even if only by a field the engine ignores, is another request; the same fields
    // in another order and spacing are the same body.
    const extra = await c.buyer('alice', 'POST', '/v1/orders', { ...order, note: 'gift' }, { 'Idempotency-Key': 'k-1' });
    expect([extra.status, extra.body.error]).toEqual([422, 'idempotency_key_reused']);
    const reordered = await c.buyer('alice', 'POST', '/v1/orders', { qty: 2, date: '2026-12-02', skuId: 'idem' }, { 'Idempotency-Key': 'k-1' });
    expect([reordered.status, reordered.body]).toEqual([201, racing[0]!.body]);
    // Another buyer's key space is separate.
    expect((await c.buyer('bob', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'k-1' })).status).toBe(201);
    const ops = await c.admin('GET', '/ops/inventory/idem/2026-12-02');
    expect(ops.body.reserved).toBe(4);
    // A sold-out answer is an answer too: the same key replays it even after stock comes back.
    await c.admin('PUT', '/v1/skus/idem/stock/2026-12-02', { total: 4 });
    const refused = await c.buyer('carol', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'k-2' });
    expect(refused.status).toBe(409);
    await c.admin('PUT', '/v1/skus/idem/stock/2026-12-02', { total: 10 });
    const replayed = await c.buyer('carol', 'POST', '/v1/orders', order, { 'Idempotency-Key': 'k-2' });
    expect(replayed.status).toBe(409);
    expect(replayed.body).toEqual(refused.body);
  });

  it('releases stock at once on cancel, answers a second cancel with 200, and expires unpaid reservations', async () => {
    const c = e.client;
    await c.sku('cx', '2026-12-03', 2);
    const a = await c.buyer('dave', 'POST', '/v1/orders', { skuId: 'cx', date: '2026-12-03', qty: 2 });
    expect(a.status).toBe(201);
    expect((await c.buyer('erin', 'POST', '/v1/orders', { skuId: 'cx', date: '2026-12-03', qty: 1 })).status).toBe(409);
    expect((await c.buyer('erin', 'POST', `/v1/orders/${a.body.orderId}/cancel`)).status).toBe(404);
    const cancelled = await c.buyer('dave', 'POST', `/v1/orders/${a.body.orderId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect((await c.buyer('dave', 'POST', `/v1/orders/${a.body.orderId}/cancel`)).body.status).toBe('cancelled');
    const b = await c.buyer('erin', 'POST', '/v1/orders', { skuId: 'cx', date: '2026-12-03', qty: 2 });
    expect(b.status).toBe(201);
    // Expiry: move the clock past the TTL; the actor's timer releases the stock.
    clock.advance(61_000);
    await waitFor(async () => (await c.admin('GET', '/ops/inventory/cx/2026-12-03')).body.available === 2);
    const expired = await c.buyer('erin', 'GET', `/v1/orders/${b.body.orderId}`);
    expect(expired.body.status).toBe('expired');
    expect((await c.buyer('erin', 'POST', `/v1/orders/${b.body.orderId}/cancel`)).status).toBe(409);
    const history = await c.admin('GET', `/ops/orders/${b.body.orderId}`);
    expect(history.body.history.map((h: { status: string }) => h.status)).toEqual(['reserved', 'expired']);
  });

  it('answers expired for a reservation past its TTL even while its order actor stays in memory (a polling storefront)', async () => {
    const c = e.client;
    await c.sku('poll', '2026-12-05', 3);
    const placed = await c.buyer('pia', 'POST', '/v1/orders', { skuId: 'poll', date: '2026-12-05', qty: 1 });
    expect(placed.status).toBe(201);
    const orderId: string = placed.body.orderId;
    // A declined card: the callback activates the order's actor, which stays reserved.
    expect((await c.pay({ orderId, paymentId: 'declined', amountCents: 1999, status: 'failed' })).body.status).toBe('reserved');
    // The storefront polls while time passes: the actor is never idle long enough to passivate.
    for (let waited = 0; waited <= 61_000; waited += 5_000) {
      clock.advance(5_000);
      expect((await c.buyer('pia', 'GET', `/v1/orders/${orderId}`)).status).toBe(200);
    }
    await waitFor(async () => (await c.admin('GET', '/ops/inventory/poll/2026-12-05')).body.available === 3);
    const got = await c.buyer('pia', 'GET', `/v1/orders/${orderId}`);
    expect([got.status, got.body.status]).toEqual([200, 'expired']);
    expect((await c.admin('GET', `/ops/orders/${orderId}`)).body.status).toBe('expired');
  });

  it('answers each bad input with the contract error and changes nothing', async () => {
    const c = e.client;
    await c.sku('bad', '2026-12-04', 5, { saleStartsAt: new Date(clock.now() - 1000).toISOString() });
    const before = (await c.admin('GET', '/ops/inventory/bad/2026-12-04')).body;
    const buyer = await c.token('frank');
    const cases: [string, string, Parameters<typeof c.request>[2], number, string][] = [
      ['no token', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 1 } }, 401, 'unauthorized'],
      ['garbage token', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 1 }, auth: 'x.y.z' }, 401, 'unauthorized'],
      ['admin token as buyer', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 1 }, auth: SECRETS.STAMPEDE_ADMIN_TOKEN }, 403, 'forbidden'],
      ['malformed JSON', '/v1/orders', { raw: '{"skuId":', auth: buyer }, 400, 'invalid_request'],
      ['qty 0', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 0 }, auth: buyer }, 400, 'invalid_request'],
      ['qty 101', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 101 }, auth: buyer }, 400, 'invalid_request'],
      ['qty 1.5', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 1.5 }, auth: buyer }, 400, 'invalid_request'],
      ['qty as string', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: '1' }, auth: buyer }, 400, 'invalid_request'],
      ['bad sku id', '/v1/orders', { body: { skuId: 'b a d', date: '2026-12-04', qty: 1 }, auth: buyer }, 400, 'invalid_request'],
      ['bad date', '/v1/orders', { body: { skuId: 'bad', date: '2026-02-30', qty: 1 }, auth: buyer }, 400, 'invalid_request'],
      ['missing field', '/v1/orders', { body: { skuId: 'bad', qty: 1 }, auth: buyer }, 400, 'invalid_request'],
      ['body over 64 KiB', '/v1/orders', { raw: JSON.stringify({ skuId: 'bad', date: '2026-12-04', qty: 1, pad: 'x'.repeat(70_000) }), auth: buyer }, 400, 'invalid_request'],
      ['long idempotency key', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 1 }, auth: buyer, headers: { 'idempotency-key': 'k'.repeat(65) } }, 400, 'invalid_request'],
      ['empty idempotency key', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 1 }, auth: buyer, headers: { 'idempotency-key': '' } }, 400, 'invalid_request'],
      ['blank idempotency key', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 1 }, auth: buyer, headers: { 'idempotency-key': '   ' } }, 400, 'invalid_request'],
      ['unknown sku', '/v1/orders', { body: { skuId: 'nope', date: '2026-12-04', qty: 1 }, auth: buyer }, 404, 'not_found'],
      ['unknown date', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-05', qty: 1 }, auth: buyer }, 404, 'not_found'],
      ['more than the stock', '/v1/orders', { body: { skuId: 'bad', date: '2026-12-04', qty: 6 }, auth: buyer }, 409, 'sold_out'],
    ];
    for (const [name, path, opts, status, code] of cases) {
      const a = await c.request('POST', path, opts);
      expect([name, a.status, a.body?.error]).toEqual([name, status, code]);
      expect(typeof a.body.message).toBe('string');
    }
    // A 404 says what is missing once ("unknown SKU nope", not "unknown SKU nope not found").
    expect((await c.request('POST', '/v1/orders', cases.find(([n]) => n === 'unknown sku')![2])).body.message).toBe('unknown SKU nope');
    expect((await c.buyer('frank', 'GET', '/v1/orders/NOPE-1')).body).toEqual({ error: 'not_found', message: 'unknown order NOPE-1' });
    const adminCases: [string, string, string, unknown, number, string][] = [
      ['buyer on admin route', 'PUT', '/v1/skus/bad/stock/2026-12-04', { total: 1 }, 403, 'forbidden'],
      ['negative total', 'PUT', '/v1/skus/bad/stock/2026-12-04', { total: -1 }, 400, 'invalid_request'],
      ['total below taken', 'PUT', '/v1/skus/bad/stock/2026-12-04', { total: 0 }, 0, ''],
      ['stock of unknown sku', 'PUT', '/v1/skus/nope/stock/2026-12-04', { total: 1 }, 404, 'not_found'],
      ['bad price', 'PUT', '/v1/skus/bad', { name: 'x', priceCents: -1, merchantId: 'm1', delivery: 'ticket' }, 400, 'invalid_request'],
      ['bad delivery', 'PUT', '/v1/skus/bad', { name: 'x', priceCents: 1, merchantId: 'm1', delivery: 'drone' }, 400, 'invalid_request'],
      ['card keys for a ticket SKU', 'POST', '/v1/skus/bad/card-keys', { keys: ['k'] }, 409, 'invalid_state'],
      ['empty card keys', 'POST', '/v1/skus/bad/card-keys', { keys: [] }, 400, 'invalid_request'],
      ['body naming another SKU', 'PUT', '/v1/skus/bad', { skuId: 'other', name: 'x', priceCents: 1, merchantId: 'm1', delivery: 'ticket' }, 400, 'invalid_request'],
      ['an offset past year 9999', 'PUT', '/v1/skus/bad', { name: 'x', priceCents: 1, merchantId: 'm1', delivery: 'ticket', saleEndsAt: '9999-12-31T23:59:59-01:00' }, 400, 'invalid_request'],
      ['an offset before year 0000', 'PUT', '/v1/skus/bad', { name: 'x', priceCents: 1, merchantId: 'm1', delivery: 'ticket', visibleAt: '0000-01-01T00:00:00+01:00' }, 400, 'invalid_request'],
    ];
    // Make one reservation so that lowering the total to 0 is below what is taken.
    expect((await c.buyer('frank', 'POST', '/v1/orders', { skuId: 'bad', date: '2026-12-04', qty: 1 })).status).toBe(201);
    for (const [name, method, path, body, status, code] of adminCases) {
      const a = name === 'buyer on admin route' ? await c.request(method, path, { body, auth: buyer }) : await c.admin(method, path, body);
      const expected = name === 'total below taken' ? [409, 'invalid_state'] : [status, code];
      expect([name, a.status, a.body?.error]).toEqual([name, ...expected]);
    }
    const after = (await c.admin('GET', '/ops/inventory/bad/2026-12-04')).body;
    expect(after).toMatchObject({
      total: before.total,
      reserved: before.reserved + 1,
      sold: before.sold,
    });
    expect((await c.request('GET', '/v1/skus/bad')).body).toMatchObject({ skuId: 'bad', priceCents: 1999, delivery: 'ticket', onSale: true });
  });
});

async function waitFor(check: () => Promise<boolean>, timeout_ms = 10_000): Promise<void> {
  const until = Date.now() + timeout_ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not met in time');
}

describe('per-buyer rate limit', () => {
  it('answers 429 rate_limited with Retry-After past the burst, per buyer, and changes nothing', async () => {
    // The buckets refill by the node's clock: a manual one, so that no token comes back while the
    // test runs however slow the machine (a real clock refilled one a second, racing the requests).
    const clock = new ManualClock(Date.now());
    const e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RATE_LIMIT_PER_S: '1', STAMPEDE_RATE_LIMIT_BURST: '3' }, clock);
    try {
      const c = e.client;
      await c.sku('rl', '2026-12-09', 100);
      const order = (userId: string) => c.buyer(userId, 'POST', '/v1/orders', { skuId: 'rl', date: '2026-12-09', qty: 1 });
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await order('greedy'));
      expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 429, 429]);
      expect(answers[3]!.body.error).toBe('rate_limited');
      // An empty bucket at 1 token a second has its next token in 1 s.
      expect(answers[3]!.headers.get('retry-after')).toBe('1');
      const patient = await order('patient');
      expect(patient.status).toBe(201);
      expect((await c.admin('GET', '/ops/inventory/rl/2026-12-09')).body.reserved).toBe(4);
      // Reads of orders count too (a flood of made-up ids would reach the SKU/date's mailbox).
      const reads = [];
      for (let i = 0; i < 3; i++) reads.push((await c.buyer('patient', 'GET', `/v1/orders/${patient.body.orderId}`)).status);
      expect(reads).toEqual([200, 200, 429]);
      // A second later one token is back for the greedy buyer: one more order, then refused again.
      clock.advance(999);
      expect((await order('greedy')).status).toBe(429);
      clock.advance(1);
      expect([(await order('greedy')).status, (await order('greedy')).status]).toEqual([201, 429]);
      expect((await c.admin('GET', '/ops/inventory/rl/2026-12-09')).body.reserved).toBe(5);
    } finally {
      await e.stop();
    }
  });
});
