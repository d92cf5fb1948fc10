// Proves `evaluate` gives exactly the brute-force reading of the contract (same verdict, same refusing rule,
// same reason) and does not depend on the order rules or usage come in: fast-check draws random rule sets,
// usages and candidates over a small world, and compares them with test/engine/reference-rules.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRules, DAY_MS, evaluate, internFacts, type UsageNoShow, type UsageOrder } from '../../engine/index.ts';

import { arbitraryRules, orderFacts, referenceEvaluate } from './reference-rules.ts';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const HOUR_MS = 3_600_000;
const SPAN_MS = 6 * DAY_MS;
/** Times on a whole-day grid, give or take 1 ms, so window edges (whole days) are hit exactly and often; or any hour. */
const time = (max_ms: number) =>
  fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: max_ms / DAY_MS }), fc.constantFrom(-1, 0, 0, 1)).map(([d, e]) => T0 + d * DAY_MS + e),
    fc.integer({ min: 0, max: max_ms / HOUR_MS }).map((h) => T0 + h * HOUR_MS),
  );

const usageOrder: fc.Arbitrary<UsageOrder> = fc.tuple(orderFacts, time(SPAN_MS)).map(([o, createdAt]) => ({ ...o, createdAt }));
const noShowOf: fc.Arbitrary<UsageNoShow> = fc.tuple(usageOrder, time(SPAN_MS)).map(([o, at]) => ({ ...o, at }));
const rules = arbitraryRules({ t0: T0, rollingDaysMax: 4, startDayMin: -1, startDayMax: 6, spanDaysMax: 5 });

describe('evaluate', () => {
  it('agrees with the brute-force reading: same verdict, same refusing rule, same reason', () => {
    fc.assert(
      fc.property(
        rules,
        fc.array(usageOrder, { maxLength: 12 }),
        fc.array(noShowOf, { maxLength: 5 }),
        usageOrder,
        time(SPAN_MS + DAY_MS),
        (rs, orders, noShows, candidate, now) => {
          const got = evaluate(compileRules(rs), { orders, noShows }, candidate, now);
          expect(got).toEqual(referenceEvaluate(rs, orders, noShows, candidate, now));
          // The same orders read from a compact ledger with shared facts (how limit actors pass them).
          const ledger = { facts: orders.map((o) => internFacts(o)), qty: orders.map((o) => o.qty), createdAt: orders.map((o) => o.createdAt) };
          expect(evaluate(compileRules(rs), { orders: [], noShows, ledger }, { ...candidate, ...internFacts(candidate) }, now)).toEqual(got);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('does not depend on the order of the rules, the orders or the no-shows', () => {
    fc.assert(
      fc.property(
        rules,
        fc.array(usageOrder, { maxLength: 10 }),
        fc.array(noShowOf, { maxLength: 4 }),
        usageOrder,
        time(SPAN_MS),
        (rs, orders, noShows, candidate, now) => {
          const a = evaluate(compileRules(rs), { orders, noShows }, candidate, now);
          const b = evaluate(compileRules([...rs].reverse()), { orders: [...orders].reverse(), noShows: [...noShows].reverse() }, candidate, now);
          expect(b).toEqual(a);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is monotone: an order refused stays refused when the buyer has used more', () => {
    fc.assert(
      fc.property(rules, fc.array(usageOrder, { maxLength: 8 }), fc.array(usageOrder, { maxLength: 4 }), usageOrder, (rs, orders, more, candidate) => {
        const set = compileRules(rs);
        const now = T0 + SPAN_MS;
        const before = evaluate(set, { orders, noShows: [] }, candidate, now);
        if (!before.ok) expect(evaluate(set, { orders: [...orders, ...more], noShows: [] }, candidate, now).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
