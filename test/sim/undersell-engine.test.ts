// Proves the verdict catches an engine that refuses buyers as sold out while it has stock, even
// during the pulse right after the setup: the same synthetic sale that passes on the real engine
// runs through a transport that answers every third order 409 sold_out without asking the engine,
// and "no SKU/date undersold" fails, naming refusals made in the first seconds of the sale.
import { describe, expect, it } from 'vitest';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../../sim/flash-sale/generator.ts';
import type { Transport } from '../../sim/replay/transport.ts';
import { startInProcessEngine } from '../../sim/run/in-process-engine.ts';
import { runSimulation } from '../../sim/run/simulation.ts';

describe('the verdict on an engine that undersells', () => {
  it('fails "no SKU/date undersold" when orders are refused sold_out while stock is free', async () => {
    // 400 buyers in a 1-second pulse on 5 SKU/dates of 200 units: no SKU/date sells out.
    const lines = generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed: 5, buyers: 400, stock: 200, duration_ms: 1_000, bots: 0 });
    const engine = await startInProcessEngine();
    let orders = 0;
    // Refused keys are refused again on a repeat, as an engine keeps a key's first answer: only the
    // refusals are wrong, not the idempotency.
    const refusedKeys = new Set<string>();
    const passedKeys = new Set<string>();
    const refusing: Transport = {
      async send(request) {
        if (request.method === 'POST' && request.path === '/v1/orders') {
          const key = `${request.headers.authorization}\n${request.headers['idempotency-key']}`;
          if (refusedKeys.has(key) || (!passedKeys.has(key) && ++orders % 3 === 0)) {
            refusedKeys.add(key);
            return { status: 409, body: { error: 'sold_out', message: 'sold out' } };
          }
          passedKeys.add(key);
        }
        return engine.transport.send(request);
      },
      close: () => engine.transport.close(),
    };
    try {
      const outcome = await runSimulation({ title: 'undersell', lines, engine: { ...engine, transport: refusing }, speed: 'max', concurrency_max: 64, waitForExpiries: true, settle_timeout_ms: 10_000, options: {} });
      const verdict = outcome.record.verdict!;
      const undersell = verdict.checks.find((c) => c.name === 'no SKU/date undersold')!;
      expect(undersell.passed, undersell.detail).toBe(false);
      expect(undersell.violations[0]).toMatch(/^line \d+: sim-sku-\d\/\S+ answered sold_out for [12], yet at most \d+ of 200 units were taken while it was decided$/);
      // Every refusal was judged: each was sent after the setup was answered, and no stock changed after.
      const refused = outcome.facts.soldOut.length;
      expect(refused).toBeGreaterThan(100);
      expect(undersell.detail).toMatch(new RegExp(`^${refused} of ${refused} sold_out answers judged`));
      // The other checks still pass: only the refusals were wrong.
      expect(verdict.checks.filter((c) => !c.passed).map((c) => c.name)).toEqual(['no SKU/date undersold']);
    } finally {
      await engine.stop();
    }
  });
});
