// What each purchase rule counts for one buyer right now, per group: the operator's view of a buyer
// (GET /ops/buyers/{userId}). Pure: the same counting as rules.ts `evaluate`, without a candidate.

import type { BuyerState } from './buyer.ts';
import { dimensionValue, groupKey, inWindow, type RuleSet } from './rules.ts';

export interface GroupUsage {
  /** The group's values of the rule's groupBy dimensions, by dimension. */
  group: Record<string, string>;
  units: number;
  orders: number;
  /** Distinct values per dimension of the rule's `max.distinct`. */
  distinct: Record<string, number>;
  noShows: number;
}

export interface RuleUsage {
  ruleId: string;
  max: unknown;
  groups: GroupUsage[];
}

/** Every rule with at least one group the buyer's counted orders or no-shows fall in. */
export function usageByRule(rules: RuleSet, state: BuyerState, now: number): RuleUsage[] {
  const out: RuleUsage[] = [];
  for (const rule of rules.rules) {
    const groups = new Map<string, GroupUsage & { values: Map<string, Set<string>> }>();
    const groupOf = (key: string[]) => {
      const id = JSON.stringify(key);
      let g = groups.get(id);
      if (!g) {
        const group: Record<string, string> = {};
        rule.groupBy.forEach((d, i) => (group[d] = key[i]!));
        g = { group, units: 0, orders: 0, distinct: {}, noShows: 0, values: new Map(rule.distinct.map(([d]) => [d, new Set<string>()])) };
        groups.set(id, g);
      }
      return g;
    };
    for (const o of state.orders.values()) {
      const key = groupKey(rule, o);
      if (!key || !inWindow(rule.window, o.createdAt, now)) continue;
      const g = groupOf(key);
      g.units += o.qty;
      g.orders += 1;
      for (const [d, set] of g.values) {
        const v = dimensionValue(o, d);
        if (v !== undefined) set.add(v);
      }
    }
    if (rule.rule.max.noShows !== undefined) {
      for (const n of state.noShows.values()) {
        const key = groupKey(rule, n);
        if (key && inWindow(rule.window, n.createdAt, now)) groupOf(key).noShows += 1;
      }
    }
    if (groups.size === 0) continue;
    out.push({
      ruleId: rule.id,
      max: rule.rule.max,
      groups: [...groups.values()].map(({ values, ...g }) => ({ ...g, distinct: Object.fromEntries([...values].map(([d, set]) => [d, set.size])) })),
    });
  }
  return out;
}
