// Proves the verdict asks the engine only for what it must have, and waits only for what can happen,
// on a correct engine in process: orders for a SKU that does not exist, for a SKU not yet visible, and
// a sale whose card-key SKU got no keys (`--stock 0`) pass "engine state readable"; a paid card-key
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
    const started = performance.now();
    const outcome = await runSimulation({ title: 't', lines, engine, speed: 'max', concurrency_max: 32, waitForExpiries: true, settle_timeout_ms, options: {} });
    return { outcome, elapsed_ms: performance.now() - started };
  } finally {
    await engine.stop();
  }
}

const failedChecks = (o: Awaited<ReturnType<typeof run>>['outcome']) => o.record.verdict!.checks.filter((c) => !c.passed);

describe('what the verdict reads', () => {
  it('passes a sale whose card-key SKU has no keys: its orders are refused, its SKU/date never existed', async () => {
    const { outcome } = await run(generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed: 2, buyers: 50, stock: 0, bots: 0 }));
    expect(failedChecks(outcome)).toEqual([]);
    expect(outcome.log.results.some((r) => r.status === 404)).toBe(true);
  });

  it('passes orders for an unknown SKU and for a SKU not yet visible', async () => {
    const D = '2027-06-01';
    const lines: RecordedLine[] = [
      { t: 0, method: 'PUT', path: '/v1/skus/shown', admin: true, body: { name: 'S', priceCents: 500, merchantId: 'm1', delivery: 'ticket' } },
      { t: 0, method: 'PUT', path: `/v1/skus/shown/stock/${D}`, admin: true, body: { total: 3 } },
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
    const { outcome, elapsed_ms } = await run(lines, 8_000);
    expect(failedChecks(outcome)).toEqual([]);
    const delivered = outcome.record.verdict!.checks.find((c) => c.name === 'every paid order delivered exactly once')!;
    expect(delivered.detail).toContain('1 awaiting card keys');
    expect([...outcome.view.orders.values()].map((o) => o.status)).toEqual(['paid']);
    expect(elapsed_ms).toBeLessThan(5_000);
  });
});
