// Purchase rules, checked again from the outside: for every order the engine made, the buyer's
// orders that were live when it was created, counting it, stay within every rule that applies
// (units, orders, distinct values). It is a brute-force reading of the contract, written apart from
// engine/rules.ts so that a mistake there cannot hide here.
//
// Where the run cannot know the order of events it gives the engine the benefit of the doubt: two
// orders of one buyer created in the same millisecond do not count against each other unless both
// still count (then the later was granted while the earlier was held); an order counts as live until
// its last change when it is cancelled, expired or refunded; orders made before the last rule change
// of the run are not judged; and orders made before their SKU's attributes last changed are neither
// judged nor counted in others' groups (the run cannot know the attributes they were held with).
// `noShows` maxima count the no-shows the listing shows (`visit`) that were recorded before an order
// was created, each in a rule's window by its own order's creation time (API.md: a window holds
// orders by creation).
import { DAY_MS, type Rule } from '../../engine/rules.ts';
import type { CheckResult } from '../run/results.ts';
import { releasedAt, type EngineView, type ListedOrder, type SkuFacts } from './engine-view.ts';
import type { RunFacts } from './run-facts.ts';
import { Violations } from './violations.ts';

const COUNTED = new Set<ListedOrder['status']>(['reserved', 'paid', 'delivered']);

function dimension(o: ListedOrder, sku: SkuFacts | undefined, name: string): string | undefined {
  if (name === 'skuId') return o.skuId;
  if (name === 'date') return o.date;
  if (name === 'merchantId') return sku?.merchantId;
  return sku?.attributes[name];
}

function applies(rule: Rule, o: ListedOrder, sku: SkuFacts | undefined): boolean {
  if (rule.match?.skuIds && !rule.match.skuIds.includes(o.skuId)) return false;
  for (const [k, value] of Object.entries(rule.match?.attributes ?? {})) if (sku?.attributes[k] !== value) return false;
  return (rule.groupBy ?? []).every((d) => dimension(o, sku, d) !== undefined);
}

function inWindow(rule: Rule, created_ms: number, now_ms: number): boolean {
  const w = rule.window;
  if (!w) return true;
  if ('rollingDays' in w) return created_ms > now_ms - w.rollingDays * DAY_MS;
  return created_ms >= Date.parse(w.from) && created_ms < Date.parse(w.to);
}

/** Live at `at_ms`: counted now, or released only after that time. */
function liveAt(o: ListedOrder, at_ms: number): boolean {
  return COUNTED.has(o.status) || releasedAt(o) > at_ms;
}

export function rulesRespected(facts: RunFacts, view: EngineView): CheckResult {
  const v = new Violations();
  const rules = view.rules.filter((r) => r.max.units !== undefined || r.max.orders !== undefined || r.max.distinct !== undefined || r.max.noShows !== undefined);
  const from_ms = facts.lastRuleChange_ms !== undefined ? facts.started_wall_ms + facts.lastRuleChange_ms : -Infinity;
  const byBuyer = new Map<string, ListedOrder[]>();
  for (const o of view.orders.values()) {
    const list = byBuyer.get(o.userId);
    if (list) list.push(o);
    else byBuyer.set(o.userId, [o]);
  }
  // An order made before its SKU's attributes last changed was held with attributes the run cannot
  // know (the SKU is read after the run): it is not judged, nor counted in another's groups.
  const attributesKnown = (o: ListedOrder) => {
    const changed = facts.skuChanged_ms.get(o.skuId);
    return changed === undefined || Date.parse(o.createdAt) > facts.started_wall_ms + changed;
  };
  let judged = 0;
  for (const [userId, orders] of byBuyer) {
    for (const candidate of orders) {
      const at = Date.parse(candidate.createdAt);
      if (at <= from_ms || !attributesKnown(candidate)) continue;
      judged++;
      const sku = view.skus.get(candidate.skuId);
      for (const rule of rules) {
        if (!applies(rule, candidate, sku)) continue;
        const key = (rule.groupBy ?? []).map((d) => dimension(candidate, sku, d));
        const sameGroup = (x: ListedOrder) => {
          if (!attributesKnown(x)) return false;
          const xs = view.skus.get(x.skuId);
          return applies(rule, x, xs) && (rule.groupBy ?? []).every((d, i) => dimension(x, xs, d) === key[i]);
        };
        if (rule.max.noShows !== undefined) {
          // Refused whatever its own window: a buyer blocked by no-shows stays blocked (engine/rules.ts).
          const noShows = orders.filter((x) => x.visit?.kind === 'no_show' && Date.parse(x.visit.at) < at && inWindow(rule, Date.parse(x.createdAt), at) && sameGroup(x)).length;
          if (noShows >= rule.max.noShows) v.add(`buyer ${userId}: order ${candidate.orderId} was taken with ${noShows} no-shows, rule ${rule.id} allows fewer than ${rule.max.noShows}`);
        }
        if (!inWindow(rule, at, at)) continue;
        if (rule.max.units === undefined && rule.max.orders === undefined && rule.max.distinct === undefined) continue;
        const group = orders.filter((x) => {
          if (x === candidate) return true;
          const created = Date.parse(x.createdAt);
          if (created > at || !liveAt(x, at)) return false;
          // Made in the same millisecond: counted when both still count (neither was ever released,
          // so the later was granted while the earlier was held — the parallel requests' race);
          // otherwise which came first is unknown (one released, the other made, in one millisecond).
          if (created === at && !(COUNTED.has(x.status) && COUNTED.has(candidate.status))) return false;
          return inWindow(rule, created, at) && sameGroup(x);
        });
        const over: string[] = [];
        const units = group.reduce((n, x) => n + x.qty, 0);
        if (rule.max.units !== undefined && units > rule.max.units) over.push(`${units} units > ${rule.max.units}`);
        if (rule.max.orders !== undefined && group.length > rule.max.orders) over.push(`${group.length} orders > ${rule.max.orders}`);
        for (const [d, max] of Object.entries(rule.max.distinct ?? {})) {
          const values = new Set(group.map((x) => dimension(x, view.skus.get(x.skuId), d)).filter((x) => x !== undefined));
          if (values.size > max) over.push(`${values.size} distinct ${d} > ${max}`);
        }
        if (over.length > 0) {
          const where = (rule.groupBy ?? []).map((d, i) => `${d}=${key[i]}`).join(', ');
          v.add(`buyer ${userId}: order ${candidate.orderId} broke rule ${rule.id}${where ? ` (${where})` : ''}: ${over.join(', ')}`);
        }
      }
    }
  }
  return v.result('purchase rules respected', `${judged} orders of ${byBuyer.size} buyers against ${rules.length} rules (units, orders, distinct, no-shows)`);
}
