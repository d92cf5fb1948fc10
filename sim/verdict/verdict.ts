// The verdict of a run: every invariant checked against the engine's own answers and ops routes.
// It passes only when every check passes; a check that could not read what it needs fails.
import type { CheckResult, Verdict } from '../run/results.ts';
import type { EngineView } from './engine-view.ts';
import { cancelsAndKeysHonoured, deliveredOnce, goodsToOneOrder, noUnexpected5xx, ordersDurable, paymentsHonoured } from './order-checks.ts';
import { rulesRespected } from './rule-check.ts';
import type { RunFacts } from './run-facts.ts';
import { noOversell, noUndersell, stockAccounted } from './stock-checks.ts';

export interface VerdictOptions {
  /** Set when the run waited past every reservation's expiry: then none may still be reserved. */
  expiredBy_ms?: number;
  /** Slack between the run's clock and the engine's, and for the expiry sweep. */
  clock_margin_ms: number;
}

export function judge(facts: RunFacts, view: EngineView, options: VerdictOptions): Verdict {
  const absent = view.absent ?? [];
  const shown = absent.slice(0, 5).join(', ') + (absent.length > 5 ? ', ...' : '');
  const readable: CheckResult = {
    name: 'engine state readable',
    passed: view.unreadable.length === 0,
    detail:
      `inventory and orders of ${facts.stock.length - absent.length} SKU/dates, rules and SKUs read through the ops routes` +
      (absent.length > 0 ? `; ${absent.length} more named by refused orders do not exist (${shown})` : ''),
    violations: view.unreadable.slice(0, 20),
  };
  const checks = [
    readable,
    noOversell(facts, view, options.clock_margin_ms),
    stockAccounted(facts, view, { ...(options.expiredBy_ms !== undefined ? { expiredBy_ms: options.expiredBy_ms } : {}), grace_ms: options.clock_margin_ms }),
    noUndersell(facts, view, options.clock_margin_ms),
    ordersDurable(facts, view),
    rulesRespected(facts, view),
    deliveredOnce(facts, view),
    goodsToOneOrder(facts, view),
    paymentsHonoured(facts, view, options.clock_margin_ms),
    cancelsAndKeysHonoured(facts, view),
    noUnexpected5xx(facts),
  ];
  return { passed: checks.every((c) => c.passed), checks };
}
