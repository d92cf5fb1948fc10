// Proves `evaluate` reads the contract's rule examples and the documented edge cases as written (missing
// attributes, match mismatches, window edges, tightened rules, no-shows after a campaign, evaluation order,
// bounds), by evaluating hand-made usages at chosen times; and that `reachOf` and `usageReach` (what prune
// may drop) keep exactly what a rule can still count, the latter order by order by its facts.
import { describe, expect, it } from 'vitest';
import {
  compileRules,
  DAY_MS,
  evaluate,
  reachOf,
  RULES_MAX,
  usageReach,
  type Rule,
  type UsageNoShow,
  type UsageOrder,
} from '../../engine/index.ts';

const T0 = Date.parse('2026-12-10T12:00:00Z');
const HOUR = 3_600_000;

function order(over: Partial<UsageOrder> = {}): UsageOrder {
  return { skuId: 'louvre-night', date: '2026-12-20', merchantId: 'm1', attributes: { venue: 'louvre', region: 'idf' }, qty: 1, createdAt: T0, ...over };
}

function check(rules: Rule[], orders: UsageOrder[], candidate: UsageOrder, now = T0, noShows: UsageNoShow[] = []) {
  return evaluate(compileRules(rules), { orders, noShows }, candidate, now);
}

const venueDate: Rule = { id: 'venue-date', groupBy: ['venue', 'date'], max: { units: 1 } };
const regionWeek: Rule = { id: 'region-week', groupBy: ['region'], window: { rollingDays: 7 }, max: { units: 20, distinct: { venue: 3 } } };
const noShow: Rule = { id: 'no-show', window: { from: '2026-12-01T00:00:00Z', to: '2027-01-01T00:00:00Z' }, max: { noShows: 5 } };

describe('the contract examples', () => {
  it('venue-date: one ticket per buyer per venue per date', () => {
    expect(check([venueDate], [], order())).toEqual({ ok: true });
    expect(check([venueDate], [], order({ qty: 2 }))).toEqual({ ok: false, ruleId: 'venue-date', reason: { kind: 'units', max: 1, value: 2 } });
    const held = [order()];
    expect(check([venueDate], held, order({ skuId: 'other-sku' }))).toMatchObject({ ok: false, ruleId: 'venue-date' });
    // Another date or another venue is another group.
    expect(check([venueDate], held, order({ date: '2026-12-21' }))).toEqual({ ok: true });
    expect(check([venueDate], held, order({ attributes: { venue: 'orsay', region: 'idf' } }))).toEqual({ ok: true });
  });

  it('region-week: at most 3 venues and 20 units per region per 7 days', () => {
    const at = (venue: string, qty: number, daysAgo: number) => order({ attributes: { venue, region: 'idf' }, qty, createdAt: T0 - daysAgo * DAY_MS });
    const used = [at('a', 5, 1), at('b', 5, 2), at('c', 5, 3)];
    expect(check([regionWeek], used, at('a', 5, 0))).toEqual({ ok: true });
    expect(check([regionWeek], used, at('d', 1, 0))).toEqual({ ok: false, ruleId: 'region-week', reason: { kind: 'distinct', dimension: 'venue', max: 3, value: 4 } });
    expect(check([regionWeek], used, at('a', 6, 0))).toEqual({ ok: false, ruleId: 'region-week', reason: { kind: 'units', max: 20, value: 21 } });
    // Another region is another group; an order 7 days old (exactly) has left the window.
    expect(check([regionWeek], used, order({ attributes: { venue: 'd', region: 'paca' } }))).toEqual({ ok: true });
    expect(check([regionWeek], [at('a', 5, 1), at('b', 5, 2), at('c', 5, 7)], at('d', 1, 0))).toEqual({ ok: true });
    expect(check([regionWeek], [at('a', 5, 1), at('b', 5, 2), at('c', 5, 7)], at('d', 1, 0), T0 - 1)).toMatchObject({ ok: false, ruleId: 'region-week' });
  });

  it('no-show: blocked with 5 no-shows of orders created in the campaign, also after it; by creation, not by when the no-show happened', () => {
    const shows = (n: number, createdAt: number, at: number): UsageNoShow[] => Array.from({ length: n }, () => ({ ...order({ createdAt }), at }));
    const inCampaign = Date.parse('2026-12-15T00:00:00Z');
    const january = Date.parse('2027-01-01T00:00:00Z');
    expect(check([noShow], [], order(), T0, shows(4, inCampaign, inCampaign))).toEqual({ ok: true });
    expect(check([noShow], [], order(), T0, shows(5, inCampaign, inCampaign))).toEqual({ ok: false, ruleId: 'no-show', reason: { kind: 'noShows', max: 5, value: 5 } });
    const february = Date.parse('2027-02-01T00:00:00Z');
    expect(check([noShow], [], order({ createdAt: february }), february, shows(5, inCampaign, inCampaign))).toMatchObject({ ok: false, ruleId: 'no-show' });
    // Ordered in December for 31 December, not used: the no-show is noticed in January and still counts.
    expect(check([noShow], [], order({ createdAt: february }), february, shows(5, inCampaign, january))).toMatchObject({ ok: false, ruleId: 'no-show' });
    // Ordered in November, a no-show in December: not an order of the campaign.
    const november = Date.parse('2026-11-20T00:00:00Z');
    expect(check([noShow], [], order(), T0, shows(9, november, inCampaign))).toEqual({ ok: true });
    expect(check([noShow], [], order(), T0, shows(9, january, january))).toEqual({ ok: true });
  });
});

describe('edge cases', () => {
  it('a rule grouping by an attribute the SKU lacks does not apply, and such orders are in no group', () => {
    const bare = order({ attributes: {} });
    expect(check([venueDate], [bare, bare], bare)).toEqual({ ok: true });
    // Inherited object properties are not attributes.
    expect(check([{ id: 'r', groupBy: ['constructor'], max: { units: 0 } }], [], order())).toEqual({ ok: true });
    // A SKU with venue is limited by its own group only; the venue-less orders do not count.
    expect(check([{ id: 'r', groupBy: ['venue'], max: { orders: 1 } }], [bare, bare], order())).toEqual({ ok: true });
  });

  it('match: a SKU outside skuIds, or lacking / differing on an attribute, is not limited, and its orders do not count', () => {
    const rule: Rule = { id: 'r', match: { skuIds: ['a', 'b'], attributes: { region: 'idf' } }, max: { orders: 1 } };
    expect(check([rule], [order({ skuId: 'a' })], order({ skuId: 'b' }))).toMatchObject({ ok: false, ruleId: 'r' });
    expect(check([rule], [order({ skuId: 'a' })], order({ skuId: 'c' }))).toEqual({ ok: true });
    expect(check([rule], [order({ skuId: 'a' })], order({ skuId: 'b', attributes: {} }))).toEqual({ ok: true });
    expect(check([rule], [order({ skuId: 'a' })], order({ skuId: 'b', attributes: { region: 'paca' } }))).toEqual({ ok: true });
    expect(check([rule], [order({ skuId: 'c' }), order({ skuId: 'a', attributes: {} })], order({ skuId: 'b' }))).toEqual({ ok: true });
  });

  it('a fixed window counts orders created in [from, to); a candidate outside it is not limited by units/orders/distinct', () => {
    const rule: Rule = { id: 'w', window: { from: '2026-12-01T00:00:00Z', to: '2026-12-02T00:00:00Z' }, max: { orders: 1 } };
    const from = Date.parse('2026-12-01T00:00:00Z');
    const to = Date.parse('2026-12-02T00:00:00Z');
    expect(check([rule], [order({ createdAt: from })], order({ createdAt: to - 1 }), to - 1)).toMatchObject({ ok: false, ruleId: 'w' });
    expect(check([rule], [order({ createdAt: from - 1 })], order({ createdAt: to - 1 }), to - 1)).toEqual({ ok: true });
    expect(check([rule], [order({ createdAt: from }), order({ createdAt: from })], order({ createdAt: to }), to)).toEqual({ ok: true });
  });

  it('a rule tightened below what a group holds refuses every further order of the group, even one adding no new distinct value', () => {
    const rule: Rule = { id: 'r', max: { distinct: { venue: 1 } } };
    const two = [order({ attributes: { venue: 'a' } }), order({ attributes: { venue: 'b' } })];
    expect(check([rule], two, order({ attributes: { venue: 'a' } }))).toEqual({ ok: false, ruleId: 'r', reason: { kind: 'distinct', dimension: 'venue', max: 1, value: 2 } });
    // An order without the dimension adds no value: alone it is within distinct 1.
    expect(check([rule], [order({ attributes: { venue: 'a' } })], order({ attributes: {} }))).toEqual({ ok: true });
  });

  it('max 0 refuses every order the rule applies to; several refusing rules name the smallest id, whatever the input order', () => {
    expect(check([{ id: 'zero', max: { units: 0 } }], [], order())).toEqual({ ok: false, ruleId: 'zero', reason: { kind: 'units', max: 0, value: 1 } });
    expect(check([{ id: 'zero', max: { noShows: 0 } }], [], order())).toEqual({ ok: false, ruleId: 'zero', reason: { kind: 'noShows', max: 0, value: 0 } });
    const rules: Rule[] = [{ id: 'b', max: { units: 0 } }, { id: 'B', max: { orders: 0 } }, { id: 'a.1', max: { units: 0 } }];
    expect(check(rules, [], order())).toMatchObject({ ruleId: 'B' }); // code-unit order: 'B' < 'a.1' < 'b'
    expect(check([...rules].reverse(), [], order())).toMatchObject({ ruleId: 'B' });
    // Within one rule: noShows, then units, then orders, then distinct by name.
    const all: Rule = { id: 'all', max: { units: 0, orders: 0, distinct: { venue: 0, date: 0 }, noShows: 1 } };
    expect(check([all], [], order())).toMatchObject({ reason: { kind: 'units' } });
    expect(check([{ ...all, max: { orders: 0, distinct: { venue: 0, date: 0 } } }], [], order())).toMatchObject({ reason: { kind: 'orders' } });
    expect(check([{ ...all, max: { distinct: { venue: 0, date: 0 } } }], [], order())).toMatchObject({ reason: { kind: 'distinct', dimension: 'date' } });
  });

  it('compileRules refuses what validation must have refused', () => {
    expect(() => compileRules([{ id: 'x', max: { units: 1 } }, { id: 'x', max: { units: 2 } }])).toThrow(RangeError);
    expect(() => compileRules(Array.from({ length: RULES_MAX + 1 }, (_, i) => ({ id: `r${i}`, max: { units: 1 } })))).toThrow(RangeError);
    expect(() => compileRules([{ id: 'g', groupBy: Array.from({ length: 9 }, (_, i) => `d${i}`), max: { units: 1 } }])).toThrow(RangeError);
    expect(() => compileRules([{ id: 'w', window: { rollingDays: 3651 }, max: { units: 1 } }])).toThrow(RangeError);
    expect(() => compileRules([{ id: 'w', window: { from: '2027-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, max: { units: 1 } }])).toThrow(RangeError);
    expect(compileRules(Array.from({ length: RULES_MAX }, (_, i) => ({ id: `r${i}`, max: { units: 1 } }))).rules).toHaveLength(RULES_MAX);
  });

  it('reachOf: how far back the rules in force can still look', () => {
    const now = T0;
    expect(reachOf(compileRules([]), now, now - HOUR)).toEqual({ orders_ms: Infinity, noShows_ms: Infinity });
    expect(reachOf(compileRules([regionWeek]), now, now - HOUR)).toEqual({ orders_ms: now - 7 * DAY_MS, noShows_ms: Infinity });
    expect(reachOf(compileRules([regionWeek, venueDate]), now, now - HOUR).orders_ms).toBe(-Infinity);
    // A campaign: its orders matter while a candidate can still fall in it; its no-shows forever.
    const campaign = compileRules([noShow, { id: 'c', window: noShow.window!, max: { units: 1 } }]);
    expect(reachOf(campaign, now, now - HOUR)).toEqual({ orders_ms: Date.parse('2026-12-01T00:00:00Z'), noShows_ms: Date.parse('2026-12-01T00:00:00Z') });
    const after = Date.parse('2027-02-01T00:00:00Z');
    expect(reachOf(campaign, after, after - HOUR)).toEqual({ orders_ms: Infinity, noShows_ms: Date.parse('2026-12-01T00:00:00Z') });
  });

  it('usageReach: per order, by each rule\'s match, groupBy, maxima and window', () => {
    const now = T0;
    const acceptFrom = now - HOUR;
    const reach = (rules: Rule[]) => usageReach(compileRules(rules), now, acceptFrom);
    const old = order({ createdAt: now - 400 * DAY_MS });
    // An all-time rule reaches what it matches and groups, for ever; nothing else.
    const louvreEver: Rule = { id: 'louvre-ever', match: { attributes: { venue: 'louvre' } }, groupBy: ['region'], max: { orders: 3 } };
    expect(reach([louvreEver]).order(old)).toBe(true);
    expect(reach([louvreEver]).order({ ...old, attributes: { venue: 'orsay', region: 'idf' } })).toBe(false);
    expect(reach([louvreEver]).order({ ...old, attributes: { venue: 'louvre' } })).toBe(false); // no region: in no group
    // A rule of no-shows only counts no order; a rule of orders only no no-show.
    const noShowsEver: Rule = { id: 'ns', max: { noShows: 2 } };
    expect(reach([noShowsEver]).order(old)).toBe(false);
    expect(reach([noShowsEver]).noShow({ ...old, at: old.createdAt })).toBe(true);
    expect(reach([louvreEver]).noShow({ ...old, at: old.createdAt })).toBe(false);
    // Rolling: created after the earliest evaluation (acceptFrom, before now) less the span.
    expect(reach([regionWeek]).order(order({ createdAt: acceptFrom - 7 * DAY_MS + 1 }))).toBe(true);
    expect(reach([regionWeek]).order(order({ createdAt: acceptFrom - 7 * DAY_MS }))).toBe(false);
    // Fixed: its orders while a candidate can still fall in it, its no-shows for ever; never outside it.
    const campaign: Rule = { ...noShow, id: 'campaign', max: { units: 1, noShows: 1 } };
    const during = order({ createdAt: Date.parse('2026-12-05T00:00:00Z') });
    expect(reach([campaign]).order(during)).toBe(true);
    expect(reach([campaign]).order({ ...during, createdAt: Date.parse('2026-11-30T00:00:00Z') })).toBe(false);
    const after = usageReach(compileRules([campaign]), Date.parse('2027-02-01T00:00:00Z'), Date.parse('2027-01-31T00:00:00Z'));
    expect(after.order(during)).toBe(false);
    expect(after.noShow({ ...during, at: during.createdAt + DAY_MS })).toBe(true);
    // No rules: nothing reached.
    expect(reach([]).order(order())).toBe(false);
  });
});
