// Proves, through the simulator, that a purchase rule put in the middle of a sale with no rule counts
// the orders placed before it: a synthetic sale runs with an empty rule book, the first rule is put
// while its payments and reads are still on their way (admin lines do not wait for the traffic before
// them), then every buyer orders again on the same SKU/date. The verdict ("purchase rules respected":
// every order created after the rule's answer, counting the buyer's orders live then) passes, buyers
// already at the rule's maximum are refused and the others are not — an engine that ignored the orders
// placed before its first rule would pass them all and fail the verdict.
import { describe, expect, it } from 'vitest';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../../sim/flash-sale/generator.ts';
import { startInProcessEngine } from '../../sim/run/in-process-engine.ts';
import { runSimulation } from '../../sim/run/simulation.ts';

const RULE = { id: 'two-per-date', groupBy: ['skuId', 'date'], max: { units: 2 } };

describe('the first rule put in the middle of a sale', () => {
  it('counts the orders placed before it: the verdict passes, and buyers at the maximum are refused', async () => {
    const first = generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed: 11, buyers: 600, stock: 2_000, duration_ms: 400, pay: 0.5, cancel: 0.1, bots: 0, rules: [] });
    type Line = (typeof first)[number];
    const orders = first.filter((l): l is Line & { body: { skuId: string; date: string; qty: number } } => l.method === 'POST' && l.path === '/v1/orders');
    const end = Math.max(...first.map((l) => l.t));
    // Each buyer's first order line (a duplicate of it is a retry of the same key).
    const firstOrder = new Map<string, (typeof orders)[number]>();
    for (const o of orders) if (o.user && !firstOrder.has(o.user)) firstOrder.set(o.user, o);
    const put: Line = { t: end + 1, method: 'PUT', path: `/v1/limit-rules/${RULE.id}`, admin: true, body: RULE };
    const again: Line[] = [...firstOrder.values()].map((o, i) => ({
      t: end + 2 + i,
      method: 'POST',
      path: '/v1/orders',
      user: o.user,
      idempotencyKey: `again-${o.user}`,
      body: { skuId: o.body.skuId, date: o.body.date, qty: 1 },
    }));
    const lines = [...first, put, ...again];

    const engine = await startInProcessEngine({ env: { STAMPEDE_RESERVATION_TTL_MS: '600000' } });
    try {
      const outcome = await runSimulation({ title: 'first rule mid-sale', lines, engine, speed: 'max', concurrency_max: 128, waitForExpiries: false, settle_timeout_ms: 20_000, options: {} });
      const verdict = outcome.record.verdict!;
      const rules = verdict.checks.find((c) => c.name === 'purchase rules respected')!;
      expect(rules.passed, rules.violations.join('\n')).toBe(true);
      expect(verdict.passed, JSON.stringify(verdict.checks.filter((c) => !c.passed))).toBe(true);
      expect(rules.detail).toMatch(/^[1-9]\d* orders of/);

      const byLine = new Map(outcome.log.results.map((r) => [r.line, r]));
      const putAnswer = byLine.get(first.length)!;
      expect(putAnswer.status).toBe(200);
      const second = again.map((_, i) => byLine.get(first.length + 1 + i)!);
      const refused = second.filter((r) => r.status === 403 && r.error === 'limit_exceeded').length;
      const placed = second.filter((r) => r.status === 201).length;
      // Buyers whose first order (2 units) still counts are refused; those with 1 unit, or whose
      // first order was refused or cancelled, get one more.
      expect(refused).toBeGreaterThan(50);
      expect(placed).toBeGreaterThan(50);
      expect(refused + placed + second.filter((r) => r.status === 409).length).toBe(second.length);
    } finally {
      await engine.stop();
    }
  });
});
