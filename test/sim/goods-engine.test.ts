// Proves the verdict reads delivered orders as their buyers see them: a synthetic sale through a
// transport that shows every buyer of a card-key order the same key (as an engine that stored one key
// under two ids, or decrypted keys wrong, would) fails "card keys and ticket codes each to one order",
// while the ops listing's key ids alone were all distinct.
import { describe, expect, it } from 'vitest';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../../sim/flash-sale/generator.ts';
import type { Transport } from '../../sim/replay/transport.ts';
import { startInProcessEngine } from '../../sim/run/in-process-engine.ts';
import { runSimulation } from '../../sim/run/simulation.ts';

describe('the verdict on an engine that shows buyers the same card key', () => {
  it('fails "card keys and ticket codes each to one order", and passes every other check', async () => {
    const lines = generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed: 7, buyers: 400, stock: 100, duration_ms: 1_000, bots: 0, pay: 0.9 });
    const engine = await startInProcessEngine();
    let rewritten = 0;
    const sameKey: Transport = {
      async send(request) {
        const answer = await engine.transport.send(request);
        const body = answer.body as { delivery?: { cardKeys?: string[] } } | undefined;
        if (request.method === 'GET' && request.path.startsWith('/v1/orders/') && body?.delivery?.cardKeys) {
          rewritten++;
          return { ...answer, body: { ...body, delivery: { cardKeys: body.delivery.cardKeys.map(() => '<key 1>') } } };
        }
        return answer;
      },
      close: () => engine.transport.close(),
    };
    try {
      const outcome = await runSimulation({ title: 'same key', lines, engine: { ...engine, transport: sameKey }, speed: 'max', concurrency_max: 64, waitForExpiries: true, settle_timeout_ms: 10_000, options: {} });
      const verdict = outcome.record.verdict!;
      expect(rewritten).toBeGreaterThan(2);
      const goods = verdict.checks.find((c) => c.name === 'card keys and ticket codes each to one order')!;
      expect(goods.passed).toBe(false);
      expect(goods.violations.some((v) => /^\S+ and \S+ are shown the same card key$/.test(v) || /is shown one card key twice$/.test(v))).toBe(true);
      expect(verdict.checks.filter((c) => !c.passed).map((c) => c.name)).toEqual(['card keys and ticket codes each to one order']);
      // The key itself is never printed.
      expect(JSON.stringify(goods)).not.toContain('<key 1>');
    } finally {
      await engine.stop();
    }
  });
});
