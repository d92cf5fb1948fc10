// Proves the verdict asks the engine only for what it must have, and waits only for what can happen,
// on a correct engine in process: orders for a SKU that does not exist, for a SKU not yet visible, and
// a sale whose card-key SKU got no keys (`--stock 0`), orders the engine refused as malformed pass
// "engine state readable"; an engine that stops answering fails it without throwing; an order held
// before its SKU's attributes changed is not judged by the new ones; the verdict places
// each request at the wall time it was sent, however long the run took to prepare; a paid card-key
// order waiting for keys the pool does not have is reported, not failed, and the run does not wait
// the whole settle time for its delivery.
import { describe, expect, it } from 'vitest';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../../sim/flash-sale/generator.ts';
import { parseRecording, type RecordedLine } from '../../sim/recording/format.ts';
import { startInProcessEngine } from '../../sim/run/in-process-engine.ts';
import { runSimulation } from '../../sim/run/simulation.ts';

async function run(lines: RecordedLine[], settle_timeout_ms = 10_000) {
  const engine = await startInProcessEngine();
  try {
    const outcome = await runSimulation({ title: 't', lines, engine, speed: 'max', concurrency_max: 32, waitForExpiries: true, settle_timeout_ms, options: {} });
    return { outcome };
  } finally {
    await engine.stop();
  }
}

const failedChecks = (o: Awaited<ReturnType<typeof run>>['outcome']) => o.record.verdict!.checks.filter((c) => !c.passed);

const D = '2027-06-01';

/** A ticket SKU put on sale with 3 units on date D (two admin lines at t 0). */
const ticketOnSale = (skuId: string): RecordedLine[] => [
  { t: 0, method: 'PUT', path: `/v1/skus/${skuId}`, admin: true, body: { name: skuId, priceCents: 500, merchantId: 'm1', delivery: 'ticket' } },
  { t: 0, method: 'PUT', path: `/v1/skus/${skuId}/stock/${D}`, admin: true, body: { total: 3 } },
];

describe('what the verdict reads', () => {
  it('passes a sale whose card-key SKU has no keys: its orders are refused, its SKU/date never existed', async () => {
    const { outcome } = await run(generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed: 2, buyers: 50, stock: 0, bots: 0 }));
    expect(failedChecks(outcome)).toEqual([]);
    expect(outcome.log.results.some((r) => r.status === 404)).toBe(true);
  });

  it('passes orders for an unknown SKU and for a SKU not yet visible', async () => {
    const lines: RecordedLine[] = [
      ...ticketOnSale('shown'),
      { t: 0, method: 'PUT', path: '/v1/skus/hidden', admin: true, body: { name: 'H', priceCents: 500, merchantId: 'm1', delivery: 'ticket', visibleAt: '2030-01-01T00:00:00Z' } },
      { t: 0, method: 'PUT', path: `/v1/skus/hidden/stock/${D}`, admin: true, body: { total: 3 } },
      { t: 1, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'shown', date: D, qty: 1 } },
      { t: 2, method: 'POST', path: '/v1/orders', user: 'u2', body: { skuId: 'hidden', date: D, qty: 1 } },
      { t: 3, method: 'POST', path: '/v1/orders', user: 'u3', body: { skuId: 'nope', date: D, qty: 1 } },
      { t: 4, method: 'POST', path: '/v1/orders', user: 'u4', body: { skuId: 'shown', date: '2027-06-09', qty: 1 } },
    ];
    const { outcome } = await run(lines);
    expect(outcome.log.results.sort((a, b) => a.line - b.line).map((r) => `${r.status} ${r.error ?? ''}`.trim())).toEqual(['200', '200', '200', '200', '201', '409 not_on_sale', '404 not_found', '404 not_found']);
    expect(failedChecks(outcome)).toEqual([]);
  });

  it('reports a paid card-key order waiting for keys the pool does not have, without waiting the settle time for it', async () => {
    // /tmp/review-sim/dry.jsonl: one key uploaded, the stock set to 3, an order of 2 paid.
    const lines = parseRecording(
      [
        '{"t":0,"method":"PUT","path":"/v1/skus/key-K","admin":true,"body":{"name":"K","priceCents":500,"merchantId":"m1","delivery":"card_key"}}',
        '{"t":1,"method":"POST","path":"/v1/skus/key-K/card-keys","admin":true,"body":{"keys":["<key 1>"]}}',
        '{"t":2,"method":"PUT","path":"/v1/skus/key-K/stock/open","admin":true,"body":{"total":3}}',
        '{"t":3,"method":"POST","path":"/v1/orders","user":"u1","body":{"skuId":"key-K","date":"open","qty":2}}',
        '{"t":4,"method":"POST","path":"/v1/payments/callback","payment":true,"body":{"orderRef":3,"status":"succeeded"}}',
      ].join('\n'),
    );
    // A settle time far past the test's own timeout: the run can only finish (and the test pass) if
    // it does not wait for a delivery that cannot come.
    const { outcome } = await run(lines, 600_000);
    expect(failedChecks(outcome)).toEqual([]);
    const delivered = outcome.record.verdict!.checks.find((c) => c.name === 'every paid order delivered exactly once')!;
    expect(delivered.detail).toContain('1 awaiting card keys');
    expect([...outcome.view.orders.values()].map((o) => o.status)).toEqual(['paid']);
  });

  it('passes orders the engine refused as malformed (a SKU id or a date it does not accept): those SKU/dates never existed', async () => {
    const lines: RecordedLine[] = [
      ...ticketOnSale('shown'),
      { t: 1, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'shown', date: D, qty: 1 } },
      { t: 2, method: 'POST', path: '/v1/orders', user: 'u2', body: { skuId: 'bad sku!', date: D, qty: 1 } },
      { t: 3, method: 'POST', path: '/v1/orders', user: 'u3', body: { skuId: 'shown', date: '2027-02-30', qty: 1 } },
    ];
    const { outcome } = await run(lines);
    expect(outcome.log.results.sort((a, b) => a.line - b.line).map((r) => `${r.status} ${r.error ?? ''}`.trim())).toEqual(['200', '200', '201', '400 invalid_request', '400 invalid_request']);
    expect(failedChecks(outcome)).toEqual([]);
  });

  it('passes a buyer whose earlier order\'s SKU moved to another venue mid-run: it was held at its old venue', async () => {
    const venue = (skuId: string, v: string): RecordedLine => ({ t: 0, method: 'PUT', path: `/v1/skus/${skuId}`, admin: true, body: { name: skuId, priceCents: 500, merchantId: 'm1', delivery: 'ticket', attributes: { venue: v } } });
    const lines: RecordedLine[] = [
      { t: 0, method: 'PUT', path: '/v1/limit-rules/venue-date', admin: true, body: { groupBy: ['venue', 'date'], max: { units: 1 } } },
      venue('moved', 'A'),
      { t: 0, method: 'PUT', path: `/v1/skus/moved/stock/${D}`, admin: true, body: { total: 3 } },
      venue('stays', 'B'),
      { t: 0, method: 'PUT', path: `/v1/skus/stays/stock/${D}`, admin: true, body: { total: 3 } },
      { t: 1, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'moved', date: D, qty: 1 } },
      { ...venue('moved', 'B'), t: 2 },
      { t: 3, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'stays', date: D, qty: 1 } },
    ];
    const { outcome } = await run(lines);
    expect(outcome.log.results.sort((a, b) => a.line - b.line).map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 201, 200, 201]);
    expect(failedChecks(outcome)).toEqual([]);
  });

  it('places each request on the wall clock when it was sent, however long the run took to prepare (150,000 lines)', async () => {
    const lines: RecordedLine[] = [
      ...ticketOnSale('clocked'),
      { t: 1, method: 'POST', path: '/v1/orders', user: 'u0', body: { skuId: 'nope', date: D, qty: 1 } },
    ];
    // Cancels of an order that never was: skipped by the replay, but read before the run starts.
    for (let i = 0; i < 150_000; i++) lines.push({ t: 2, method: 'POST', path: '/v1/orders/{orderId}/cancel', user: 'u0', orderRef: 2 });
    lines.push({ t: 3, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'clocked', date: D, qty: 1 } });
    const engine = await startInProcessEngine();
    try {
      const send = engine.transport.send.bind(engine.transport);
      let sentAt_ms = 0;
      engine.transport.send = async (request) => {
        if (request.method === 'POST' && request.path === '/v1/orders') sentAt_ms = Date.now();
        return send(request);
      };
      const outcome = await runSimulation({ title: 't', lines, engine, speed: 'max', concurrency_max: 8, waitForExpiries: false, settle_timeout_ms: 5_000, options: {} });
      const order = [...outcome.facts.orders.values()].find((o) => o.skuId === 'clocked')!;
      // The verdict's wall time of the order's request is when it left (a clock started before the
      // preparation put it ~400 ms early here, and rule changes and stock spans with it).
      expect(Math.abs(outcome.facts.started_wall_ms + order.sent_ms - sentAt_ms)).toBeLessThan(100);
    } finally {
      await engine.stop();
    }
  });

  it('judges an engine that stops answering after the traffic: the verdict fails "engine state readable", nothing throws, no settle wait', async () => {
    const engine = await startInProcessEngine();
    try {
      const lines: RecordedLine[] = [...ticketOnSale('gone'), { t: 1, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'gone', date: D, qty: 1 } }];
      // Once the order was answered, the engine's reads fail as a dead engine's do (connection refused).
      const send = engine.transport.send.bind(engine.transport);
      let ordered = false;
      engine.transport.send = async (request) => {
        if (ordered && request.method === 'GET') throw new Error('connect ECONNREFUSED 127.0.0.1:8080');
        const answer = await send(request);
        if (request.method === 'POST' && request.path === '/v1/orders') ordered = true;
        return answer;
      };
      const started = performance.now();
      const outcome = await runSimulation({ title: 't', lines, engine, speed: 'max', concurrency_max: 4, waitForExpiries: false, settle_timeout_ms: 20_000, options: {} });
      expect(performance.now() - started).toBeLessThan(10_000);
      const readable = outcome.record.verdict!.checks.find((c) => c.name === 'engine state readable')!;
      expect(readable.passed).toBe(false);
      expect(readable.violations[0]).toContain('ECONNREFUSED');
      expect(outcome.record.verdict!.passed).toBe(false);
    } finally {
      await engine.stop();
    }
  });
});
