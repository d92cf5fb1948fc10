// Purchase rules, checked again from the outside: for every order the engine made, the buyer's
// orders that were live when it was created, counting it, stay within every rule that applies
// (units, orders, distinct values). It is a brute-force reading of the contract, written apart from
// engine/rules.ts so that a mistake there cannot hide here.
//
// Where the run cannot know the order of events it gives the engine the benefit of the doubt: two
// orders of one buyer created in the same millisecond do not count against each other unless both
// still count (then the later was granted while the earlier was held); an order counts as live until
// its last change when it is cancelled, expired or refunded; each order is judged by the rules known
// to be in force when it was made (RuleTimeline); and orders made before their SKU's attributes last changed are neither
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

const limiting = (r: Rule) => r.max.units !== undefined || r.max.orders !== undefined || r.max.distinct !== undefined || r.max.noShows !== undefined;

/** What the run knows of one rule id at a time: in force as `Rule`, absent, or unknown. */
type RuleState = Rule | 'absent' | 'unknown';

/**
 * The rules in force at each time of the run, as far as its rule changes tell. A rule the run never
 * changed is as the engine lists it now, all along. One it changed is unknown before its first change
 * (it may have existed, with any body), then what each change answered 2xx made it (a PUT's body, or
 * absent after a DELETE); a change answered 4xx or 503 changed nothing (the contract), and one answered
 * otherwise or not at all leaves it unknown until the next. While a change is in flight (sent, not yet
 * answered) its rule is unknown too. An order is judged by the rules known to be in force when it was
 * created — before, a rule change anywhere in the run (a teardown DELETE, a routine re-PUT) stopped
 * the check for every order made before it.
 */
class RuleTimeline {
  /** The changes that may have changed something (all but 4xx and 503 answers), in order: sent and answered (wall ms). */
  private readonly steps: { sent: number; answered: number; ruleId: string }[] = [];
  /** The limiting rules known in force after k steps (k = 0..steps), and the state they come from. */
  private readonly known: Rule[][] = [];

  constructor(facts: RunFacts, view: EngineView) {
    const state = new Map<string, RuleState>();
    for (const r of view.rules) state.set(r.id, r);
    const changes = facts.ruleChanges.filter((c) => !((c.status >= 400 && c.status < 500) || c.status === 503));
    for (const c of changes) state.set(c.ruleId, 'unknown');
    const snapshot = () => {
      const rules: Rule[] = [];
      for (const s of state.values()) if (typeof s === 'object' && limiting(s)) rules.push(s);
      return rules;
    };
    this.known.push(snapshot());
    for (const c of changes) {
      const ok = c.status >= 200 && c.status < 300;
      state.set(c.ruleId, ok ? (c.rule ? { ...c.rule, id: c.ruleId } : 'absent') : 'unknown');
      this.steps.push({ sent: facts.started_wall_ms + c.sent_ms, answered: facts.started_wall_ms + c.answered_ms, ruleId: c.ruleId });
      this.known.push(snapshot());
    }
  }

  /** The limiting rules known to be in force at `at` (wall ms). Admin lines go one at a time, so the steps are in time order. */
  at(at: number): Rule[] {
    let lo = 0;
    let hi = this.steps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.steps[mid]!.answered < at) lo = mid + 1;
      else hi = mid;
    }
    const rules = this.known[lo]!;
    const next = this.steps[lo];
    // A change in flight at `at` (sent, not answered): its rule may be either.
    return next !== undefined && next.sent <= at ? rules.filter((r) => r.id !== next.ruleId) : rules;
  }

  get changes(): number {
    return this.steps.length;
  }
}

export function rulesRespected(facts: RunFacts, view: EngineView): CheckResult {
  const v = new Violations();
  const timeline = new RuleTimeline(facts, view);
  const judgedRules = new Set<string>();
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
      if (!attributesKnown(candidate)) continue;
      const rules = timeline.at(at);
      judged++;
      const sku = view.skus.get(candidate.skuId);
      for (const rule of rules) {
        judgedRules.add(rule.id);
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
  const changes = timeline.changes > 0 ? `, each by the rules in force when it was made (${timeline.changes} rule changes in the run)` : '';
  return v.result('purchase rules respected', `${judged} orders of ${byBuyer.size} buyers against ${judgedRules.size} rules (units, orders, distinct, no-shows)${changes}`);
}
