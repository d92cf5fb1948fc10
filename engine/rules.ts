// Purchase rules (API.md "Purchase rules"): what a rule is, and `evaluate`, the pure check of one
// candidate order against a buyer's usage. No I/O, no clock: `now` is passed in.
//
// Semantics, where the contract is silent:
// - A rule APPLIES to a candidate when the candidate matches `match` (its SKU is in `skuIds`, and its SKU
//   has every `attributes` pair; an attribute the SKU lacks is a mismatch) and the candidate's SKU has a
//   value for every `groupBy` dimension. A rule grouping by `venue` does not apply to a SKU without `venue`.
// - The rule's GROUP for that candidate: the buyer's counted orders that match the rule too and have the
//   candidate's value for every groupBy dimension. An order is judged with the attributes its SKU had
//   when it was held (the facts are copied into the order; a later catalog change does not move it).
// - Windows select by creation time: rolling N days = created after `now - N*24h` (exclusive; an order
//   created "in the future" counts); {from, to} = created in [from, to). The candidate counts toward
//   units/orders/distinct only when it is itself inside the window; a candidate outside the window cannot
//   exceed those maxima (it is not counted), e.g. a campaign rule no longer limits orders after `to`.
// - `units` / `orders` / `distinct` refuse when the group, counting the candidate, is over the max. Taken
//   literally: a group that is over already (a rule tightened after the fact) refuses every further
//   candidate in it, including one that adds no new distinct value. For `distinct`, an order without the
//   dimension adds no value.
// - `noShows` refuses a candidate the rule applies to when the buyer has >= N no-shows of orders created
//   in the window (API.md: a window holds orders by creation time) and in the group (same match / groupBy
//   test as orders); when the no-show happened does not matter. It does not
//   depend on where the candidate falls: "blocked after 5 no-shows in the campaign" stays blocked after
//   the campaign (until the rule is deleted).
// - Rules are evaluated in ascending id order (code-unit order), and within a rule noShows, units, orders,
//   then distinct dimensions in ascending name order, so the refusing rule and reason are stable.
// - A max of 0 is allowed: `units: 0` or `noShows: 0` refuses every candidate the rule applies to.

/** Upper bounds of a rule set (TIGER_STYLE: a limit on everything). */
export const RULES_MAX = 1_000;
export const RULE_GROUP_BY_DIMENSIONS_MAX = 8;
export const RULE_DISTINCT_DIMENSIONS_MAX = 8;
export const RULE_MATCH_SKU_IDS_MAX = 1_000;
export const RULE_MATCH_ATTRIBUTES_MAX = 32;
export const RULE_WINDOW_DAYS_MAX = 3_650;
/** The largest value of any max (units, orders, distinct, noShows). */
export const RULE_LIMIT_MAX = 1_000_000_000;
export const DAY_MS = 86_400_000;

/** `skuId`, `date`, `merchantId`, or a SKU attribute name such as `venue`. */
export type Dimension = string;

export type RuleWindow = { rollingDays: number } | { from: string; to: string };

export interface RuleMax {
  /** Sum of qty. */
  units?: number;
  orders?: number;
  /** Distinct values of each dimension among the group's orders. */
  distinct?: Record<Dimension, number>;
  /** A buyer with this many no-shows or more (in the window, in the group) is refused. */
  noShows?: number;
}

export interface RuleMatch {
  skuIds?: string[];
  attributes?: Record<string, string>;
}

/** A rule exactly as the contract writes it (the body of PUT /v1/limit-rules/{ruleId}). */
export interface Rule {
  id: string;
  match?: RuleMatch;
  groupBy?: Dimension[];
  /** Absent: all time. */
  window?: RuleWindow;
  max: RuleMax;
}

/** What a rule looks at in one order: its SKU's facts at the time it was held, its qty and creation time. */
export interface UsageOrder {
  skuId: string;
  date: string;
  merchantId: string;
  attributes: Readonly<Record<string, string>>;
  qty: number;
  createdAt: number;
}

/** A no-show of one of the buyer's orders, at the time it became one. */
export interface UsageNoShow extends UsageOrder {
  at: number;
}

/** The facts of an order a rule's match and groupBy read. */
export type OrderFactsOnly = Pick<UsageOrder, 'skuId' | 'date' | 'merchantId' | 'attributes'>;

/**
 * The counted orders laid out compactly (entry i: facts[i], qty[i], createdAt[i]), facts shared by the
 * orders of one SKU/date (engine/facts-intern.ts): evaluating them reads a few contiguous arrays
 * instead of one object per order scattered over the heap.
 */
export interface UsageLedger {
  facts: OrderFactsOnly[];
  qty: number[];
  createdAt: number[];
}

/** The buyer's usage: counted orders (held or confirmed) and no-shows. Each is iterated once. */
export interface Usage {
  orders: Iterable<UsageOrder>;
  noShows: Iterable<UsageNoShow>;
  /** The same orders as `orders`, compactly: read instead of `orders` when given. */
  ledger?: UsageLedger;
}

export type RefusalReason =
  | { kind: 'units' | 'orders' | 'noShows'; max: number; value: number }
  | { kind: 'distinct'; dimension: Dimension; max: number; value: number };

export type Evaluation = { ok: true } | { ok: false; ruleId: string; reason: RefusalReason };

export type CompiledWindow = { kind: 'all' } | { kind: 'rolling'; span_ms: number } | { kind: 'fixed'; from_ms: number; to_ms: number };

/** A rule prepared for evaluation: sets for lookups, the window in milliseconds. */
export interface CompiledRule {
  readonly rule: Rule;
  readonly id: string;
  readonly skuIds: ReadonlySet<string> | undefined;
  readonly attributes: readonly (readonly [string, string])[];
  readonly groupBy: readonly Dimension[];
  readonly window: CompiledWindow;
  /** [dimension, max], by dimension name. */
  readonly distinct: readonly (readonly [Dimension, number])[];
}

/** The rules in force, sorted by id, compiled once per change (the rule book holds one). */
export interface RuleSet {
  readonly rules: readonly CompiledRule[];
}

export const EMPTY_RULE_SET: RuleSet = { rules: [] };

export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compiles rules the edge has validated. Throws RangeError on what validation must have refused
 * (a programmer mistake): duplicate ids, too many rules, groupBy or window over their bounds.
 */
export function compileRules(rules: readonly Rule[]): RuleSet {
  if (rules.length > RULES_MAX) throw new RangeError(`at most ${RULES_MAX} rules, got ${rules.length}`);
  const sorted = [...rules].sort((a, b) => byCodeUnits(a.id, b.id));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.id === sorted[i - 1]!.id) throw new RangeError(`duplicate rule id ${sorted[i]!.id}`);
  }
  return { rules: sorted.map(compileRule) };
}

export function compileRule(rule: Rule): CompiledRule {
  const groupBy = rule.groupBy ?? [];
  if (groupBy.length > RULE_GROUP_BY_DIMENSIONS_MAX) throw new RangeError(`rule ${rule.id}: groupBy has more than ${RULE_GROUP_BY_DIMENSIONS_MAX} dimensions`);
  const distinct = Object.entries(rule.max.distinct ?? {}).sort(([a], [b]) => byCodeUnits(a, b));
  if (distinct.length > RULE_DISTINCT_DIMENSIONS_MAX) throw new RangeError(`rule ${rule.id}: distinct has more than ${RULE_DISTINCT_DIMENSIONS_MAX} dimensions`);
  return {
    rule,
    id: rule.id,
    skuIds: rule.match?.skuIds ? new Set(rule.match.skuIds) : undefined,
    attributes: Object.entries(rule.match?.attributes ?? {}),
    groupBy,
    window: compileWindow(rule),
    distinct,
  };
}

function compileWindow(rule: Rule): CompiledWindow {
  const w = rule.window;
  if (!w) return { kind: 'all' };
  if ('rollingDays' in w) {
    if (!Number.isSafeInteger(w.rollingDays) || w.rollingDays < 1 || w.rollingDays > RULE_WINDOW_DAYS_MAX) {
      throw new RangeError(`rule ${rule.id}: rollingDays must be an integer from 1 to ${RULE_WINDOW_DAYS_MAX}`);
    }
    return { kind: 'rolling', span_ms: w.rollingDays * DAY_MS };
  }
  const from_ms = Date.parse(w.from);
  const to_ms = Date.parse(w.to);
  if (!(from_ms < to_ms) || to_ms - from_ms > RULE_WINDOW_DAYS_MAX * DAY_MS) {
    throw new RangeError(`rule ${rule.id}: window must have from < to, at most ${RULE_WINDOW_DAYS_MAX} days apart`);
  }
  return { kind: 'fixed', from_ms, to_ms };
}

/** Whether time `t` (a creation or no-show time) is inside the window as seen at `now`. */
export function inWindow(w: CompiledWindow, t: number, now: number): boolean {
  switch (w.kind) {
    case 'all':
      return true;
    case 'rolling':
      return t > now - w.span_ms;
    case 'fixed':
      return t >= w.from_ms && t < w.to_ms;
  }
}

/** The order's value for a dimension, or undefined when its SKU has no such attribute. */
export function dimensionValue(facts: OrderFactsOnly, dimension: Dimension): string | undefined {
  switch (dimension) {
    case 'skuId':
      return facts.skuId;
    case 'date':
      return facts.date;
    case 'merchantId':
      return facts.merchantId;
    default:
      // Own properties only: `constructor` or `toString` are not attributes of a plain object.
      return Object.hasOwn(facts.attributes, dimension) ? facts.attributes[dimension] : undefined;
  }
}

/** Whether the order matches the rule's `match` (SKU list and attribute pairs). */
export function matchesRule(rule: CompiledRule, facts: OrderFactsOnly): boolean {
  if (rule.skuIds && !rule.skuIds.has(facts.skuId)) return false;
  for (const [k, v] of rule.attributes) {
    if (!Object.hasOwn(facts.attributes, k) || facts.attributes[k] !== v) return false;
  }
  return true;
}

/** The candidate's groupBy values when the rule applies to it, else undefined. */
export function groupKey(rule: CompiledRule, facts: OrderFactsOnly): string[] | undefined {
  if (!matchesRule(rule, facts)) return undefined;
  const key: string[] = [];
  for (const d of rule.groupBy) {
    const v = dimensionValue(facts, d);
    if (v === undefined) return undefined;
    key.push(v);
  }
  return key;
}

function inGroup(rule: CompiledRule, key: readonly string[], facts: OrderFactsOnly): boolean {
  for (let i = 0; i < rule.groupBy.length; i++) {
    if (dimensionValue(facts, rule.groupBy[i]!) !== key[i]) return false;
  }
  return matchesRule(rule, facts);
}

/** Running totals of one applicable rule's group. */
interface Tally {
  rule: CompiledRule;
  key: string[];
  units: number;
  orders: number;
  noShows: number;
  distinct: Set<string>[];
  /** Whether the candidate itself is in the window (else units/orders/distinct cannot refuse it). */
  counted: boolean;
}

/**
 * Whether the buyer may place `candidate` at `now`: refused, naming the first refusing rule (by id),
 * when counting it any applicable rule's group would be over a max, or the buyer has too many no-shows
 * for one. One pass over the orders and one over the no-shows.
 */
export function evaluate(rules: RuleSet, usage: Usage, candidate: UsageOrder, now: number): Evaluation {
  const tallies: Tally[] = [];
  for (const rule of rules.rules) {
    const key = groupKey(rule, candidate);
    if (!key) continue;
    const counted = inWindow(rule.window, candidate.createdAt, now);
    if (!counted && rule.rule.max.noShows === undefined) continue; // nothing this rule could refuse
    const t: Tally = { rule, key, units: 0, orders: 0, noShows: 0, distinct: rule.distinct.map(() => new Set<string>()), counted };
    if (counted) add(t, candidate, candidate.qty);
    tallies.push(t);
  }
  if (tallies.length === 0) return { ok: true };
  // An order with the candidate's own facts (the same SKU/date: most of a buyer's orders in a sale) is
  // in every applicable rule's group: each group key is made of those facts. Shared facts
  // (engine/facts-intern.ts) make this test pointer comparisons.
  const ledger = usage.ledger;
  if (ledger) {
    const { facts, qty, createdAt } = ledger;
    for (let i = 0; i < facts.length; i++) count(tallies, facts[i]!, qty[i]!, createdAt[i]!, candidate, now);
  } else {
    for (const o of usage.orders) count(tallies, o, o.qty, o.createdAt, candidate, now);
  }
  const noShowRules = tallies.filter((t) => t.rule.rule.max.noShows !== undefined);
  if (noShowRules.length > 0) {
    for (const n of usage.noShows) {
      const same = sameFacts(n, candidate);
      for (const t of noShowRules) {
        if (inWindow(t.rule.window, n.createdAt, now) && (same || inGroup(t.rule, t.key, n))) t.noShows += 1;
      }
    }
  }
  for (const t of tallies) {
    const reason = refusal(t);
    if (reason) return { ok: false, ruleId: t.rule.id, reason };
  }
  return { ok: true };
}

/** Adds one counted order (its facts, qty and creation time) to every tally whose window and group hold it. */
function count(tallies: readonly Tally[], f: OrderFactsOnly, qty: number, createdAt: number, candidate: UsageOrder, now: number): void {
  const same = sameFacts(f, candidate);
  for (const t of tallies) {
    if (inWindow(t.rule.window, createdAt, now) && (same || inGroup(t.rule, t.key, f))) add(t, f, qty);
  }
}

/** Whether two orders have the same SKU, date, merchant and attributes (the same attributes object). */
function sameFacts(a: OrderFactsOnly, b: OrderFactsOnly): boolean {
  if (a === b) return true;
  return a.attributes === b.attributes && a.skuId === b.skuId && a.date === b.date && a.merchantId === b.merchantId;
}

function add(t: Tally, o: OrderFactsOnly, qty: number): void {
  t.units += qty;
  t.orders += 1;
  const distinct = t.rule.distinct;
  for (let i = 0; i < distinct.length; i++) {
    const v = dimensionValue(o, distinct[i]![0]);
    if (v !== undefined) t.distinct[i]!.add(v);
  }
}

function refusal(t: Tally): RefusalReason | undefined {
  const max = t.rule.rule.max;
  if (max.noShows !== undefined && t.noShows >= max.noShows) return { kind: 'noShows', max: max.noShows, value: t.noShows };
  if (!t.counted) return undefined;
  if (max.units !== undefined && t.units > max.units) return { kind: 'units', max: max.units, value: t.units };
  if (max.orders !== undefined && t.orders > max.orders) return { kind: 'orders', max: max.orders, value: t.orders };
  for (let i = 0; i < t.rule.distinct.length; i++) {
    const [dimension, limit] = t.rule.distinct[i]!;
    const value = t.distinct[i]!.size;
    if (value > limit) return { kind: 'distinct', dimension, max: limit, value };
  }
  return undefined;
}

/**
 * The earliest creation time (for orders) and no-show time any of these rules can still count for a
 * candidate created at or after `acceptFrom` and evaluated at or after `now`; -Infinity when one can
 * count everything (a rule without a window), +Infinity when none can count anything. A bound for all
 * of a buyer's orders at once, whatever their facts: `usageReach` tells order by order.
 */
export function reachOf(rules: RuleSet, now: number, acceptFrom: number): { orders_ms: number; noShows_ms: number } {
  let orders_ms = Infinity;
  let noShows_ms = Infinity;
  for (const r of rules.rules) {
    const w = r.window;
    // Orders: reachable while a candidate can still fall in the window.
    const o = w.kind === 'all' ? -Infinity : w.kind === 'rolling' ? now - w.span_ms : w.to_ms > acceptFrom ? w.from_ms : Infinity;
    orders_ms = Math.min(orders_ms, o);
    if (r.rule.max.noShows !== undefined) {
      // No-shows (by their order's creation): a candidate is refused by them whenever it comes, so a
      // fixed window keeps its span. A no-show happens after its order's creation, so a bound on
      // creation times is one on no-show times too (what pruning compares).
      const n = w.kind === 'all' ? -Infinity : w.kind === 'rolling' ? now - w.span_ms : w.from_ms;
      noShows_ms = Math.min(noShows_ms, n);
    }
  }
  return { orders_ms, noShows_ms };
}

/** Whether the rules can still count one of a buyer's orders, or no-shows (see usageReach). */
export interface UsageReach {
  order(o: UsageOrder): boolean;
  noShow(n: UsageNoShow): boolean;
}

/** What the rules that apply to one set of facts can reach, by creation time. */
interface FactsReach {
  /** A rule without a window applies. */
  all: boolean;
  /** Reached when created after this (rolling windows). */
  after: number;
  /** Reached when created in one of these [from, to) (fixed windows). */
  fixed: [number, number][];
}

/**
 * Order by order, whether any of these rules can still count it for a candidate created at or after
 * `acceptFrom` (an older hold is refused as stale) and evaluated at or after `now`: a rule counts an
 * order only if the order matches it and has a value for each of its groupBy dimensions (else it is in
 * none of the rule's groups), the rule has a max that counts orders (units, orders, distinct; a
 * no-show-only rule counts no order), and its window can still hold the order for such a candidate:
 * always without a window, created after `min(now, acceptFrom) - span` for a rolling one (a hold is
 * evaluated at its order's creation, when that is before now), created in [from, to) for a fixed one
 * that a candidate can still fall in (to > acceptFrom). A no-show: the rule has a noShows max, matches
 * and groups it, and its window holds its order's creation (a fixed one whenever the candidate comes).
 * Unlike reachOf this reads each rule's `match`: an all-time rule on one SKU keeps that SKU's orders
 * for ever, not every order of the buyer. Worked out once per distinct set of facts.
 */
export function usageReach(rules: RuleSet, now: number, acceptFrom: number): UsageReach {
  const earliest = Math.min(now, acceptFrom);
  const counting = rules.rules.filter((r) => r.rule.max.units !== undefined || r.rule.max.orders !== undefined || r.distinct.length > 0);
  const noShowRules = rules.rules.filter((r) => r.rule.max.noShows !== undefined);
  const reachOfFacts = (list: readonly CompiledRule[], facts: OrderFactsOnly, forNoShows: boolean): FactsReach => {
    const reach: FactsReach = { all: false, after: Infinity, fixed: [] };
    for (const r of list) {
      if (groupKey(r, facts) === undefined) continue;
      const w = r.window;
      if (w.kind === 'all') reach.all = true;
      else if (w.kind === 'rolling') reach.after = Math.min(reach.after, earliest - w.span_ms);
      else if (forNoShows || w.to_ms > acceptFrom) reach.fixed.push([w.from_ms, w.to_ms]);
    }
    return reach;
  };
  const reaches = (reach: FactsReach, createdAt: number): boolean => {
    if (reach.all || createdAt > reach.after) return true;
    for (const [from, to] of reach.fixed) if (createdAt >= from && createdAt < to) return true;
    return false;
  };
  // Keyed by the attributes object (shared by equal facts: engine/facts-intern.ts), then the rest.
  const memo = (list: readonly CompiledRule[], forNoShows: boolean) => {
    const byAttributes = new Map<Readonly<Record<string, string>>, Map<string, FactsReach>>();
    return (o: UsageOrder): boolean => {
      if (list.length === 0) return false;
      let byKey = byAttributes.get(o.attributes);
      if (byKey === undefined) byAttributes.set(o.attributes, (byKey = new Map()));
      const key = `${o.skuId}\u0000${o.date}\u0000${o.merchantId}`;
      let reach = byKey.get(key);
      if (reach === undefined) byKey.set(key, (reach = reachOfFacts(list, o, forNoShows)));
      return reaches(reach, o.createdAt);
    };
  };
  return { order: memo(counting, false), noShow: memo(noShowRules, true) };
}
