// Proves the replayer's ordering rules against a fake engine that records what arrives and when:
// lines are sent at their time scaled by --speed, a line that refers to an order waits for that
// order's answer and carries its id (and for the previous line on that order), a reference to an
// order line that got no order is skipped and counted, catalog changes act as barriers both ways (in
// linear work: a barrier waits for the lines since the one before it) while other admin lines (redeems,
// no-shows) do not, payments are signed over their exact bytes and
// repeat the recorded paymentId, the in-flight bound holds, and every line answered otherwise than
// recorded is counted (not only the ones kept for the report).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAuth } from '../../http/auth.ts';
import { Credentials, mintHs256 } from '../../sim/replay/credentials.ts';
import { MISMATCHES_KEPT_MAX, replay } from '../../sim/replay/replayer.ts';
import type { SimAnswer, SimRequest, Transport } from '../../sim/replay/transport.ts';
import type { RecordedLine } from '../../sim/recording/format.ts';

const secrets = { adminToken: 'admin-token-0123456789', userJwtSecret: 'jwt-secret-0123456789abcdef0123456789', paymentSecret: 'payment-secret-0123456789' };

class FakeEngine implements Transport {
  readonly received: { at_ms: number; request: SimRequest }[] = [];
  inFlight = 0;
  inFlightMax = 0;
  private next = 0;
  constructor(
    private readonly answer: (r: SimRequest, n: number) => SimAnswer,
    private readonly delay_ms = 5,
  ) {}
  async send(request: SimRequest): Promise<SimAnswer> {
    this.received.push({ at_ms: performance.now(), request });
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    const n = this.next++;
    await new Promise((r) => setTimeout(r, this.delay_ms));
    this.inFlight--;
    return this.answer(request, n);
  }
  async close(): Promise<void> {}
}

const order = (t: number, user: string): RecordedLine => ({ t, method: 'POST', path: '/v1/orders', user, body: { skuId: 's', date: 'open', qty: 1 } });

describe('the replayer', () => {
  afterEach(() => vi.restoreAllMocks());

  it('keeps the recorded timing scaled by speed', async () => {
    const lines = [order(0, 'a'), order(400, 'b'), order(800, 'c')];
    const fake = new FakeEngine(() => ({ status: 409, body: { error: 'sold_out' } }));
    const start = performance.now();
    await replay(lines, fake, new Credentials(secrets), { speed: 4, concurrency_max: 10 });
    const offsets = fake.received.map((r) => r.at_ms - start);
    expect(offsets[1]!).toBeGreaterThanOrEqual(95);
    expect(offsets[2]!).toBeGreaterThanOrEqual(195);
    expect(offsets[2]! - offsets[0]!).toBeLessThan(800);
  });

  it('sends references after their order answered, with its id; skips (and reports as skipped) those of orders refused', async () => {
    const lines: RecordedLine[] = [
      { t: 0, method: 'PUT', path: '/v1/skus/s/stock/open', admin: true, body: { total: 1 } },
      order(0, 'a'),
      order(0, 'b'),
      { t: 0, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 1, status: 'succeeded', paymentId: 'pay-a' } },
      { t: 0, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 1, status: 'succeeded', paymentId: 'pay-a' } },
      { t: 0, method: 'POST', path: '/v1/orders/{orderId}/cancel', user: 'b', orderRef: 2 },
      { t: 0, method: 'GET', path: '/v1/orders/{orderId}', user: 'a', orderRef: 1 },
    ];
    const fake = new FakeEngine((r) => {
      if (r.path === '/v1/orders') {
        const user = JSON.parse(Buffer.from(r.headers.authorization!.split('.')[1]!, 'base64url').toString()).sub;
        return user === 'a' ? { status: 201, body: { orderId: 'order-a', skuId: 's', date: 'open', qty: 1, amountCents: 700, expiresAt: new Date().toISOString() } } : { status: 409, body: { error: 'sold_out' } };
      }
      return { status: 200, body: { status: 'paid' } };
    });
    const answered: number[] = [];
    const skipped: number[] = [];
    const log = await replay(lines, fake, new Credentials(secrets), { speed: 'max', concurrency_max: 10, onAnswer: (n) => answered.push(n), onSkip: (n) => skipped.push(n) });
    expect(log.skipped).toBe(1);
    // The progress hooks: the skipped cancel is reported as skipped, not as a request answered.
    expect(skipped).toEqual([1]);
    expect(answered).toEqual([1, 2, 3, 4, 5, 6]);
    const paths = fake.received.map((r) => `${r.request.method} ${r.request.path}`);
    expect(paths[0]).toBe('PUT /v1/skus/s/stock/open');
    expect(paths).not.toContain('POST /v1/orders/undefined/cancel');
    expect(paths.filter((p) => p === 'POST /v1/payments/callback')).toHaveLength(2);
    expect(paths).toContain('GET /v1/orders/order-a');
    // The payments carry the order's id and amount, repeat the paymentId, and are signed over their bytes.
    const auth = createAuth({ ...secrets, now: () => Date.now() });
    for (const r of fake.received.filter((x) => x.request.path === '/v1/payments/callback')) {
      expect(JSON.parse(r.request.body!)).toEqual({ orderId: 'order-a', paymentId: 'pay-a', amountCents: 700, status: 'succeeded' });
      expect(auth.verifyPaymentSignature(Buffer.from(r.request.body!), r.request.headers['stampede-signature'])).toBe(true);
    }
    // Nothing was sent before the admin line's answer came.
    expect(fake.received[1]!.at_ms - fake.received[0]!.at_ms).toBeGreaterThanOrEqual(4);
    expect(log.orders.get(1)!.orderId).toBe('order-a');
  });

  it('keeps the recorded order of the lines on one order, and sends a stock change after every line before it', async () => {
    const events: string[] = [];
    const transport: Transport = {
      async send(r: SimRequest): Promise<SimAnswer> {
        const what = `${r.method} ${r.path}`;
        events.push(`sent ${what}`);
        // The order's answer is slow; every other answer quick.
        await new Promise((resolve) => setTimeout(resolve, r.path === '/v1/orders' ? 50 : 5));
        events.push(`answered ${what}`);
        if (r.path === '/v1/orders') return { status: 201, body: { orderId: 'o-a', skuId: 's', date: 'open', qty: 1, amountCents: 700, expiresAt: new Date().toISOString() } };
        return { status: 200, body: { status: 'cancelled' } };
      },
      async close() {},
    };
    const lines: RecordedLine[] = [
      order(0, 'a'),
      { t: 1, method: 'POST', path: '/v1/orders/{orderId}/cancel', user: 'a', orderRef: 0 },
      { t: 2, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 0, status: 'succeeded', paymentId: 'late' } },
    ];
    await replay(lines, transport, new Credentials(secrets), { speed: 'max', concurrency_max: 10 });
    expect(events.indexOf('sent POST /v1/payments/callback')).toBeGreaterThan(events.indexOf('answered POST /v1/orders/o-a/cancel'));

    events.length = 0;
    await replay([order(0, 'b'), { t: 1, method: 'PUT', path: '/v1/skus/s/stock/open', admin: true, body: { total: 5 } }], transport, new Credentials(secrets), { speed: 'max', concurrency_max: 10 });
    expect(events.indexOf('sent PUT /v1/skus/s/stock/open')).toBeGreaterThan(events.indexOf('answered POST /v1/orders'));
  });

  it('applies each of many stock changes after the lines before it and before the lines after it, waiting for each line once', async () => {
    // Orders with answers of varying speed, a stock change after every third: 200 changes, 600 orders.
    const lines: RecordedLine[] = [];
    for (let i = 0; i < 800; i++) {
      lines.push(i % 4 === 3 ? { t: i, method: 'PUT', path: `/v1/skus/s/stock/open`, admin: true, body: { total: i } } : order(i, `u${i}`));
    }
    const events: string[] = [];
    const transport: Transport = {
      async send(r: SimRequest): Promise<SimAnswer> {
        const what = r.method === 'PUT' ? `stock ${JSON.parse(r.body!).total}` : `order ${JSON.parse(Buffer.from(r.headers.authorization!.split('.')[1]!, 'base64url').toString()).sub}`;
        events.push(`sent ${what}`);
        // Every other answer waits a few turns of the event loop, so later lines overtake it.
        for (let k = events.length % 2 === 0 ? 3 : 0; k > 0; k--) await new Promise((resolve) => setImmediate(resolve));
        events.push(`answered ${what}`);
        return r.method === 'PUT' ? { status: 200, body: { total: 1 } } : { status: 409, body: { error: 'sold_out' } };
      },
      async close() {},
    };
    // What each barrier waits on: the previous barrier and the lines since, not every line so far.
    const allSettled = vi.spyOn(Promise, 'allSettled');
    await replay(lines, transport, new Credentials(secrets), { speed: 'max', concurrency_max: 64 });
    const waitedOn = allSettled.mock.calls.reduce((sum, [promises]) => sum + [...(promises as Iterable<unknown>)].length, 0);
    expect(allSettled).toHaveBeenCalledTimes(200);
    // One each for the 600 orders and the 200 previous barriers (every line so far was ~60,000).
    expect(waitedOn).toBe(800);
    const at = new Map(events.map((e, i) => [e, i]));
    const what = (m: number) => (lines[m]!.method === 'PUT' ? `stock ${m}` : `order u${m}`);
    // Each stock change is sent after the last answer before it, and answered before the first line after it is sent.
    let lastAnswerBefore = -1;
    lines.forEach((line, n) => {
      if (line.method === 'PUT') {
        const sent = at.get(`sent stock ${n}`)!;
        expect(lastAnswerBefore, `every line before line ${n} answered before its stock change is sent`).toBeLessThan(sent);
        let firstSentAfter = Infinity;
        for (let m = n + 1; m < lines.length; m++) firstSentAfter = Math.min(firstSentAfter, at.get(`sent ${what(m)}`)!);
        expect(firstSentAfter, `no line after line ${n} sent before its stock change is answered`).toBeGreaterThan(at.get(`answered stock ${n}`)!);
      }
      lastAnswerBefore = Math.max(lastAnswerBefore, at.get(`answered ${what(n)}`)!);
    });
  });

  it("does not hold the traffic at a redeem or a no-shows pass, and sends a redeem after its order's payment", async () => {
    const events: string[] = [];
    // Buyer b's order is answered once the lines after it are sent (or after a second, when they wait for it).
    const after = ['POST /v1/orders/o-a/redeem admin', 'POST /ops/no-shows admin', 'POST /v1/orders c'];
    let afterSent!: () => void;
    const allAfterSent = new Promise<void>((resolve) => (afterSent = resolve));
    const transport: Transport = {
      async send(r: SimRequest): Promise<SimAnswer> {
        const who = r.headers.authorization?.includes('.') ? JSON.parse(Buffer.from(r.headers.authorization.split('.')[1]!, 'base64url').toString()).sub : 'admin';
        const what = `${r.method} ${r.path} ${who}`;
        events.push(`sent ${what}`);
        if (after.every((a) => events.includes(`sent ${a}`))) afterSent();
        // Every answer but b's order comes at once.
        if (r.path === '/v1/orders' && who === 'b') await Promise.race([allAfterSent, new Promise((resolve) => setTimeout(resolve, 1_000))]);
        else await new Promise((resolve) => setImmediate(resolve));
        events.push(`answered ${what}`);
        if (r.path === '/v1/orders') return { status: 201, body: { orderId: `o-${who}`, skuId: 's', date: 'open', qty: 1, amountCents: 700, expiresAt: new Date().toISOString() } };
        return { status: 200, body: { status: 'paid' } };
      },
      async close() {},
    };
    const lines: RecordedLine[] = [
      order(0, 'a'),
      { t: 1, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 0, status: 'succeeded', paymentId: 'pay-a' } },
      order(2, 'b'),
      { t: 3, method: 'POST', path: '/v1/orders/{orderId}/redeem', admin: true, orderRef: 0 },
      { t: 4, method: 'POST', path: '/ops/no-shows', admin: true },
      order(5, 'c'),
    ];
    await replay(lines, transport, new Credentials(secrets), { speed: 'max', concurrency_max: 10 });
    const bAnswered = events.indexOf('answered POST /v1/orders b');
    expect(events.indexOf('sent POST /v1/orders/o-a/redeem admin')).toBeGreaterThan(events.indexOf('answered POST /v1/payments/callback admin'));
    expect(events.indexOf('sent POST /v1/orders/o-a/redeem admin')).toBeLessThan(bAnswered);
    expect(events.indexOf('sent POST /ops/no-shows admin')).toBeLessThan(bAnswered);
    expect(events.indexOf('sent POST /v1/orders c')).toBeLessThan(bAnswered);
  });

  it('signs a recorded malformed callback only when its body is not JSON (one with a JSON body could pay when sent signed)', async () => {
    const fake = new FakeEngine(() => ({ status: 400, body: { error: 'invalid_request' } }));
    const body = { orderId: 'o-from-the-recording', paymentId: 'p', amountCents: 700, status: 'succeeded' };
    await replay(
      [
        { t: 0, method: 'POST', path: '/v1/payments/callback', body, outcome: { status: 400, error: 'invalid_request' } },
        { t: 1, method: 'POST', path: '/v1/payments/callback', rawBody: 'not json', outcome: { status: 400, error: 'invalid_request' } },
      ],
      fake,
      new Credentials(secrets),
      { speed: 'max', concurrency_max: 1 },
    );
    const auth = createAuth({ ...secrets, now: () => Date.now() });
    const [json, raw] = fake.received.map((r) => r.request);
    expect(json!.headers['stampede-signature']).toBeUndefined();
    expect(auth.verifyPaymentSignature(Buffer.from(raw!.body!), raw!.headers['stampede-signature'])).toBe(true);
  });

  it('never has more requests in flight than asked', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => order(0, `u${i}`));
    const fake = new FakeEngine(() => ({ status: 409, body: { error: 'sold_out' } }), 3);
    const log = await replay(lines, fake, new Credentials(secrets), { speed: 'max', concurrency_max: 7 });
    expect(fake.inFlightMax).toBe(7);
    expect(log.results).toHaveLength(60);
  });

  it("keeps the answers the verdict reads (orders, payments, admin changes), not an admin GET's", async () => {
    const lines: RecordedLine[] = [
      { t: 0, method: 'PUT', path: '/v1/skus/s/stock/open', admin: true, body: { total: 1 } },
      order(0, 'a'),
      { t: 0, method: 'GET', path: '/ops/orders', admin: true },
      { t: 0, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 1, status: 'succeeded', paymentId: 'pay-a' } },
    ];
    const fake = new FakeEngine((r) => (r.method === 'GET' ? { status: 200, body: { orders: Array.from({ length: 100 }, (_, i) => ({ orderId: `x${i}` })), next: null } } : r.path === '/v1/orders' ? { status: 201, body: { orderId: 'o1' } } : { status: 200, body: {} }), 0);
    const log = await replay(lines, fake, new Credentials(secrets), { speed: 'max', concurrency_max: 4 });
    expect(log.results).toHaveLength(4);
    expect([...log.answers.keys()].sort()).toEqual([0, 1, 3]);
  });

  it('counts every line answered otherwise than recorded, beyond the ones it keeps', async () => {
    // 1,500 of 2,000 recorded 201 are answered 409 now: 500 as recorded, though only 1,000 mismatches are kept.
    const lines = Array.from({ length: 2_000 }, (_, i): RecordedLine => ({ ...order(0, `u${i}`), outcome: { status: 201 } }));
    const fake = new FakeEngine((_r, n) => (n < 1_500 ? { status: 409, body: { error: 'sold_out' } } : { status: 201, body: { orderId: `o${n}` } }), 0);
    const log = await replay(lines, fake, new Credentials(secrets), { speed: 'max', concurrency_max: 64 });
    expect([log.compared, log.mismatched, log.mismatches.length]).toEqual([2_000, 1_500, MISMATCHES_KEPT_MAX]);
  });

  it('mints buyer tokens the engine accepts', async () => {
    const auth = createAuth({ ...secrets, now: () => Date.now() });
    expect(await auth.buyerIdOf(mintHs256(secrets.userJwtSecret, 'buyer-7', Math.floor(Date.now() / 1000), 3600))).toBe('buyer-7');
    expect(await auth.buyerIdOf(mintHs256('another-secret-0123456789abcdef012345', 'buyer-7', Math.floor(Date.now() / 1000), 3600))).toBeUndefined();
    expect(await auth.buyerIdOf(mintHs256(secrets.userJwtSecret, 'buyer-7', Math.floor(Date.now() / 1000) - 7200, 3600))).toBeUndefined();
  });
});
