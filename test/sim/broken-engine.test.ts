// Proves the verdict can fail: the same synthetic sale that passes on the real engine fails on a
// test build whose inventory decisions oversell (the pure `decide` replaced, through vitest's module
// mock, by one that sees 20% more stock than there is), and the failing check names the oversold
// SKU/dates.
import { describe, expect, it, vi } from 'vitest';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../../sim/flash-sale/generator.ts';
import { startInProcessEngine } from '../../sim/run/in-process-engine.ts';
import { runSimulation } from '../../sim/run/simulation.ts';

vi.mock('../../engine/index.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../engine/index.ts')>();
  return {
    ...original,
    // The injected defect: a reservation is checked against 120% of the total.
    decide: (state: Parameters<typeof original.decide>[0], command: Parameters<typeof original.decide>[1], now: number) =>
      command.type === 'reserve' ? original.decide({ ...state, total: Math.ceil(state.total * 1.2) }, command, now) : original.decide(state, command, now),
  };
});

describe('the verdict on a broken engine', () => {
  it('fails "no SKU/date oversold" when the engine sells more than its stock', async () => {
    const lines = generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed: 3, buyers: 800, stock: 100, duration_ms: 500, pay: 0.5, cancel: 0, bots: 0 });
    const engine = await startInProcessEngine({ env: { STAMPEDE_RESERVATION_TTL_MS: '600000' } });
    try {
      const outcome = await runSimulation({ title: 'broken', lines, engine, speed: 'max', concurrency_max: 128, waitForExpiries: false, settle_timeout_ms: 20_000, options: {} });
      const verdict = outcome.record.verdict!;
      expect(verdict.passed).toBe(false);
      const oversell = verdict.checks.find((c) => c.name === 'no SKU/date oversold')!;
      expect(oversell.passed).toBe(false);
      expect(oversell.violations.some((v) => /sim-sku-2\/2027-06-01: reserved \d+ \+ sold \d+ > total 100/.test(v))).toBe(true);
    } finally {
      await engine.stop();
    }
  });
});
