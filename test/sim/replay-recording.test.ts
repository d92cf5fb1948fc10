// Proves a recording made by the server replays to the same outcomes: a real node records a mix
// of admin, buyer and payment traffic (sold out, idempotent repeats, a reused key, cancels,
// duplicate, failed, badly signed and malformed callbacks, card keys, bad input), then
// `stampede sim replay` sends the file, unedited, to a fresh engine it starts in process; every
// line is answered as recorded and the verdict passes.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signPayment } from '../../http/signing.ts';
import { simCommand } from '../../sim/cli.ts';
import { parseRecording } from '../../sim/recording/format.ts';
import { SECRETS, startEngine } from '../support/engine.ts';
import { Capture, statusLog } from '../support/capture.ts';


const D = '2027-03-01';

describe('replaying a recording made by the server', () => {
  it('answers every line as recorded, on a fresh in-process engine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-replay-'));
    const file = join(dir, 'traffic.jsonl');
    const e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RECORD: file });
    const c = e.client;
    const { statuses, track: s } = statusLog();
    try {
      await s(c.admin('PUT', '/v1/skus/show', { name: 'Show', priceCents: 1000, merchantId: 'm1', delivery: 'ticket', attributes: { venue: 'v1' } }));
      await s(c.admin('PUT', `/v1/skus/show/stock/${D}`, { total: 2 }));
      await s(c.admin('PUT', '/v1/skus/keys', { name: 'Keys', priceCents: 500, merchantId: 'm1', delivery: 'card_key' }));
      await s(c.admin('POST', '/v1/skus/keys/card-keys', { keys: ['K-1-secret', 'K-2-secret', 'K-1-secret'] }));
      await s(c.admin('PUT', '/v1/limit-rules/one-per-venue', { id: 'one-per-venue', groupBy: ['venue', 'date'], max: { units: 1 } }));
      const o1 = await s(c.buyer('u1', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 1 }, { 'idempotency-key': 'k1' }));
      await s(c.buyer('u1', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 1 })); // the rule: 403 (while stock is left)
      const o2 = await s(c.buyer('u2', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 1 }));
      await s(c.buyer('u3', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 1 })); // sold out
      await s(c.buyer('u1', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 1 }, { 'idempotency-key': 'k1' })); // same answer
      await s(c.buyer('u1', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 2 }, { 'idempotency-key': 'k1' })); // 422
      await s(c.buyer('u1', 'GET', `/v1/orders/${o1.body.orderId}`));
      await s(c.buyer('u9', 'GET', `/v1/orders/${o1.body.orderId}`)); // not the owner: 404
      await s(c.buyer('u2', 'POST', `/v1/orders/${o2.body.orderId}/cancel`));
      await s(c.buyer('u2', 'POST', `/v1/orders/${o2.body.orderId}/cancel`)); // again: 200
      const o3 = await s(c.buyer('u3', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 1 })); // the freed unit
      const paid = { orderId: o1.body.orderId, paymentId: 'pay-1', amountCents: 1000, status: 'succeeded' as const };
      await s(c.pay(paid));
      await s(c.pay(paid)); // duplicate
      await s(c.pay({ ...paid, paymentId: 'pay-0', status: 'failed' })); // an earlier attempt, late
      await s(c.pay({ orderId: o3.body.orderId, paymentId: 'pay-3', amountCents: 1000, status: 'succeeded' }, { secret: 'not-the-secret-0123456789' })); // 401
      const raw = '{"orderId": "oops"';
      await s(c.request('POST', '/v1/payments/callback', { raw, headers: { 'stampede-signature': signPayment(SECRETS.STAMPEDE_PAYMENT_SECRET, raw, Math.floor(Date.now() / 1000)) } })); // 400
      await s(c.pay({ orderId: o2.body.orderId, paymentId: 'pay-2', amountCents: 1000, status: 'succeeded' })); // after cancel: refund_required
      const k = await s(c.buyer('u4', 'POST', '/v1/orders', { skuId: 'keys', date: 'open', qty: 2 }));
      await s(c.pay({ orderId: k.body.orderId, paymentId: 'pay-k', amountCents: 1000, status: 'succeeded' }));
      await s(c.buyer('u4', 'POST', '/v1/orders', { skuId: 'show', date: D, qty: 0 })); // 400
      await s(c.request('POST', '/v1/orders', { body: { skuId: 'show', date: D, qty: 1 } })); // 401
      await s(c.admin('GET', `/ops/orders/${o1.body.orderId}`));
    } finally {
      await e.stop();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 201, 403, 201, 409, 201, 422, 200, 404, 200, 200, 201, 200, 200, 200, 401, 400, 200, 201, 200, 400, 401, 200]);
    const recording = parseRecording(readFileSync(file, 'utf8'));
    expect(recording).toHaveLength(statuses.length);
    expect(recording.map((l) => l.outcome?.status)).toEqual(statuses);

    const out = new Capture();
    const result = await simCommand(['replay', file, '--speed', 'max', '--concurrency', '1', '--report', join(dir, 'r.html'), '--json', join(dir, 'r.json')], out);
    expect(out.text).toContain(`Outcomes as recorded: ${statuses.length} of ${statuses.length} lines answered as in the recording`);
    expect(result?.passed, out.text).toBe(true);
    const figures = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(figures.totals.requests).toBe(statuses.length);
    expect(figures.totals.skipped).toBe(0);
  });
});
