// A brute-force reading of API.md "Purchase rules" (and the edge cases engine/rules.ts documents), written
// independently of engine/rules.ts: per rule, filter the whole history, then count. Plus the fast-check
// arbitraries of a small world (SKUs, attributes, rules) the property tests share. Not a test file itself.
import fc from 'fast-check';
import type { RefusalReason, Rule, UsageNoShow, UsageOrder } from '../../engine/index.ts';

const DAY = 86_400_000;

function value(o: UsageOrder, d: string): string | undefined {
  if (d === 'skuId' || d === 'date' || d === 'merchantId') return o[d];
  return Object.prototype.hasOwnProperty.call(o.attributes, d) ? o.attributes[d] : undefined;
}

function matches(rule: Rule, o: UsageOrder): boolean {
  if (rule.match?.skuIds !== undefined && !rule.match.skuIds.includes(o.skuId)) return false;
  return Object.entries(rule.match?.attributes ?? {}).every(([k, v]) => Object.prototype.hasOwnProperty.call(o.attributes, k) && o.attributes[k] === v);
}

function within(rule: Rule, t: number, now: number): boolean {
  const w = rule.window;
  if (w === undefined) return true;
  if ('rollingDays' in w) return t > now - w.rollingDays * DAY;
  return t >= Date.parse(w.from) && t < Date.parse(w.to);
}

/** The reason this one rule refuses the candidate, or undefined. */
export function referenceRule(rule: Rule, orders: readonly UsageOrder[], noShows: readonly UsageNoShow[], candidate: UsageOrder, now: number): RefusalReason | undefined {
  const dims = rule.groupBy ?? [];
  if (!matches(rule, candidate) || dims.some((d) => value(candidate, d) === undefined)) return undefined;
  const sameGroup = (o: UsageOrder) => matches(rule, o) && dims.every((d) => value(o, d) === value(candidate, d));
  if (rule.max.noShows !== undefined) {
    const n = noShows.filter((s) => sameGroup(s) && within(rule, s.createdAt, now)).length;
    if (n >= rule.max.noShows) return { kind: 'noShows', max: rule.max.noShows, value: n };
  }
  if (!within(rule, candidate.createdAt, now)) return undefined;
  const group = [...orders.filter((o) => sameGroup(o) && within(rule, o.createdAt, now)), candidate];
  const units = group.reduce((sum, o) => sum + o.qty, 0);
  if (rule.max.units !== undefined && units > rule.max.units) return { kind: 'units', max: rule.max.units, value: units };
  if (rule.max.orders !== undefined && group.length > rule.max.orders) return { kind: 'orders', max: rule.max.orders, value: group.length };
  for (const [d, max] of Object.entries(rule.max.distinct ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const n = new Set(group.map((o) => value(o, d)).filter((v) => v !== undefined)).size;
    if (n > max) return { kind: 'distinct', dimension: d, max, value: n };
  }
  return undefined;
}

/** The first refusing rule by id, as `evaluate` answers. */
export function referenceEvaluate(
  rules: readonly Rule[],
  orders: readonly UsageOrder[],
  noShows: readonly UsageNoShow[],
  candidate: UsageOrder,
  now: number,
): { ok: true } | { ok: false; ruleId: string; reason: RefusalReason } {
  for (const rule of [...rules].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const reason = referenceRule(rule, orders, noShows, candidate, now);
    if (reason) return { ok: false, ruleId: rule.id, reason };
  }
  return { ok: true };
}

/** Every group of `rule` among `orders` at `now` (orders in the window, matching, with every groupBy value). */
export function groupsOf(rule: Rule, orders: readonly UsageOrder[], now: number): UsageOrder[][] {
  const dims = rule.groupBy ?? [];
  const groups = new Map<string, UsageOrder[]>();
  for (const o of orders) {
    if (!matches(rule, o) || !within(rule, o.createdAt, now)) continue;
    const key = dims.map((d) => value(o, d));
    if (key.some((v) => v === undefined)) continue;
    const k = JSON.stringify(key);
    groups.set(k, [...(groups.get(k) ?? []), o]);
  }
  return [...groups.values()];
}

/** Whether a group is over any of the rule's units / orders / distinct maxima. */
export function overMax(rule: Rule, group: readonly UsageOrder[]): string | undefined {
  const units = group.reduce((sum, o) => sum + o.qty, 0);
  if (rule.max.units !== undefined && units > rule.max.units) return `units ${units} > ${rule.max.units}`;
  if (rule.max.orders !== undefined && group.length > rule.max.orders) return `orders ${group.length} > ${rule.max.orders}`;
  for (const [d, max] of Object.entries(rule.max.distinct ?? {})) {
    const n = new Set(group.map((o) => value(o, d)).filter((v) => v !== undefined)).size;
    if (n > max) return `distinct ${d} ${n} > ${max}`;
  }
  return undefined;
}

/** Dimensions the world knows, plus `constructor` (never an attribute) and `seat` (rarely present). */
const DIMENSIONS = ['skuId', 'date', 'merchantId', 'venue', 'region', 'seat', 'constructor'];

/** An order's facts but its creation time: 3 SKUs, 3 dates, 2 merchants, attributes often missing. */
export const orderFacts: fc.Arbitrary<Omit<UsageOrder, 'createdAt'>> = fc.record({
  skuId: fc.constantFrom('a', 'b', 'c'),
  date: fc.constantFrom('2026-12-20', '2026-12-21', 'open'),
  merchantId: fc.constantFrom('m1', 'm2'),
  attributes: fc.record({ venue: fc.constantFrom('v1', 'v2', 'v3'), region: fc.constantFrom('r1', 'r2'), seat: fc.constant('s') }, { requiredKeys: [] }),
  qty: fc.integer({ min: 1, max: 4 }),
});

export interface WindowRange {
  t0: number;
  rollingDaysMax: number;
  /** Fixed windows start on a whole day t0 + [startDayMin, startDayMax] and last 1..spanDaysMax days. */
  startDayMin: number;
  startDayMax: number;
  spanDaysMax: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

function arbitraryRule(id: string, w: WindowRange): fc.Arbitrary<Rule> {
  const window: fc.Arbitrary<Rule['window']> = fc.oneof(
    fc.constant(undefined),
    fc.integer({ min: 1, max: w.rollingDaysMax }).map((rollingDays) => ({ rollingDays })),
    fc
      .tuple(fc.integer({ min: w.startDayMin, max: w.startDayMax }), fc.integer({ min: 1, max: w.spanDaysMax }))
      .map(([start, days]) => ({ from: iso(w.t0 + start * DAY), to: iso(w.t0 + (start + days) * DAY) })),
  );
  const max: fc.Arbitrary<Rule['max']> = fc
    .record(
      {
        units: fc.integer({ min: 0, max: 8 }),
        orders: fc.integer({ min: 0, max: 4 }),
        distinct: fc.dictionary(fc.constantFrom(...DIMENSIONS), fc.integer({ min: 0, max: 3 }), { minKeys: 1, maxKeys: 3 }),
        noShows: fc.integer({ min: 0, max: 3 }),
      },
      { requiredKeys: [] },
    )
    .filter((m) => Object.keys(m).length > 0);
  const match = fc.record(
    {
      skuIds: fc.uniqueArray(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 }),
      attributes: fc.dictionary(fc.constantFrom('venue', 'region'), fc.constantFrom('v1', 'v2', 'r1', 'r2'), { maxKeys: 1 }),
    },
    { requiredKeys: [] },
  );
  return fc
    .record({ match, groupBy: fc.uniqueArray(fc.constantFrom(...DIMENSIONS), { maxLength: 3 }), window, max }, { requiredKeys: ['max'] })
    .map((r) => {
      const out: Rule = { id, max: r.max };
      if (r.match !== undefined) out.match = r.match;
      if (r.groupBy !== undefined) out.groupBy = r.groupBy;
      if (r.window !== undefined) out.window = r.window;
      return out;
    });
}

/** 0..5 rules with distinct ids (mixed case, so code-unit order matters). */
export function arbitraryRules(w: WindowRange): fc.Arbitrary<Rule[]> {
  return fc
    .uniqueArray(fc.constantFrom('r0', 'r1', 'R2', 'r3', 'a.4', 'r5'), { maxLength: 5 })
    .chain((ids) => fc.tuple(...ids.map((id) => arbitraryRule(id, w))));
}
