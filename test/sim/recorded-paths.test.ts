// Proves that a recording knows every path the engine's router sends to the order routes, however it
// is written (any case, a trailing slash, a query string), and an order id given as the ops listing's
// `after` cursor: a real node (embedded SQLite) records such traffic, every line on an order refers
// to its order line (none is left out as unreferenced), and `stampede sim replay` plays the file on a
// fresh engine to the same outcomes with a passing verdict. The reader's idea of an order line is
// checked against what the real node answers for each way of writing the path.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { simCommand } from '../../sim/cli.ts';
import { isOrderLine, parseRecording } from '../../sim/recording/format.ts';
import { startEngine } from '../support/engine.ts';
import { sampleValue } from '../support/metrics.ts';
import { Capture, statusLog } from '../support/capture.ts';


const D = '2027-03-01';
const ORDER = { skuId: 'paths', date: D, qty: 1 };

describe('paths in a recording', () => {
  it('takes an order line to be what the engine routes to POST /v1/orders', async () => {
    const e = await startEngine({ kind: 'sqlite' });
    try {
      const variants = ['/v1/orders', '/v1/orders/', '/V1/ORDERS', '/v1/Orders/', '/v1/orders?x=1', '/v1/orders/?x=1', '/v1/orders//', '//v1/orders', '/v1/%6Frders', '/v1/ordersx', '/v1/orders/x'];
      for (const path of variants) {
        // An empty body: the order route refuses it 400; a path that is not the route is 404 (or 405).
        const answer = await e.client.buyer('u0', 'POST', path, {});
        expect([path, isOrderLine({ method: 'POST', path })]).toEqual([path, answer.status === 400]);
      }
    } finally {
      await e.stop();
    }
  });

  it('refers to orders made on paths written otherwise, and to an order named in a listing cursor; the replay matches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-paths-'));
    const file = join(dir, 'traffic.jsonl');
    const e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RECORD: file });
    const c = e.client;
    const { statuses, track: s } = statusLog();
    try {
      await s(c.admin('PUT', '/v1/skus/paths', { name: 'Paths', priceCents: 1000, merchantId: 'm1', delivery: 'ticket' }));
      await s(c.admin('PUT', `/V1/Skus/paths/Stock/${D}/`, { total: 3 }));
      const o1 = await s(c.buyer('u1', 'POST', '/v1/orders/', ORDER));
      const o2 = await s(c.buyer('u2', 'POST', '/V1/Orders', ORDER));
      await s(c.buyer('u3', 'POST', '/v1/ORDERS/?from=app', ORDER));
      await s(c.buyer('u4', 'POST', '/v1/orders', ORDER)); // sold out
      await s(c.buyer('u1', 'GET', `/v1/orders/${o1.body.orderId}`));
      await s(c.pay({ orderId: o1.body.orderId, paymentId: 'pay-1', amountCents: 1000, status: 'succeeded' }));
      await s(c.buyer('u2', 'POST', `/V1/ORDERS/${o2.body.orderId}/Cancel/`));
      await s(c.admin('GET', `/ops/orders?skuId=paths&date=${D}&limit=1&after=${encodeURIComponent(o1.body.orderId)}`));
      const metrics = await c.admin('GET', '/metrics');
      expect(sampleValue(metrics.body, 'stampede_record_skipped_total', { reason: 'unreferenced' })).toBe(0);
    } finally {
      await e.stop();
    }
    expect(statuses).toEqual([200, 200, 201, 201, 201, 409, 200, 200, 200, 200]);
    const text = readFileSync(file, 'utf8');
    const lines = parseRecording(text);
    expect(lines.map((l) => l.outcome?.status)).toEqual(statuses);
    expect(lines[6]).toMatchObject({ method: 'GET', path: '/v1/orders/{orderId}', orderRef: 2 });
    expect(lines[7]).toMatchObject({ payment: true, body: { orderRef: 2, paymentId: 'pay-1' } });
    expect(lines[8]).toMatchObject({ method: 'POST', path: '/v1/orders/{orderId}/cancel', orderRef: 3 });
    // The cursor names an order of the recording: a reference, not the id the replay will not have.
    expect(lines[9]).toMatchObject({ method: 'GET', path: `/ops/orders?skuId=paths&date=${D}&limit=1&after={orderId}`, orderRef: 2 });
    expect(text).not.toMatch(/"after=(?!\{orderId\})/);

    const out = new Capture();
    const result = await simCommand(['replay', file, '--speed', 'max', '--concurrency', '1', '--report', join(dir, 'r.html'), '--json', join(dir, 'r.json')], out);
    expect(out.text).toContain(`Outcomes as recorded: ${statuses.length} of ${statuses.length} lines answered as in the recording`);
    expect(result?.passed, out.text).toBe(true);
    const figures = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(figures.totals.skipped).toBe(0);
    // The sold_out refusal was judged: the stock set on `/V1/Skus/.../Stock/...` is a stock change too.
    const undersell = figures.verdict.checks.find((c: { name: string }) => c.name === 'no SKU/date undersold');
    expect(undersell.detail).toMatch(/^1 of 1 sold_out answers judged/);
  });
});
