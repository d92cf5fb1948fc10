// Proves the buyer's limit state never lets a group pass a max, refuses exactly the orders the rules refuse
// (checked against a brute-force evaluator over a model that never prunes, so pruning is proved harmless),
// never counts an order released before its hold, and replays its events to the same state (also through
// JSON, as the journal stores them, and from a compaction on, in its compact and its older plain
// format): fast-check drives random interleavings of holds, confirms, releases, no-shows, prunes,
// compactions and clock jumps of up to weeks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BUYER_ORDERS_MAX,
  LEDGER_ORDERS_MIN,
  PRUNE_IDS_PER_EVENT_MAX,
  buyerFromSnapshot,
  buyerToCompactSnapshot,
  buyerToSnapshot,
  compileRules,
  DAY_MS,
  decideBuyer,
  emptyBuyer,
  evolveBuyer,
  TOMBSTONE_KEEP_MS,
  type BuyerCommand,
  type BuyerEvent,
  type BuyerOrderFacts,
  type BuyerState,
  type NoShow,
  type Rule,
  type UsageOrder,
} from '../../engine/index.ts';
import { arbitraryRules, groupsOf, orderFacts, overMax, referenceEvaluate } from './reference-rules.ts';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const MINUTE_MS = 60_000;
const ORDER_IDS = Array.from({ length: 12 }, (_, i) => `o${i}`);

type Step =
  | { kind: 'hold' | 'confirm' | 'release' | 'no_show'; id: number; dt: number }
  /** An order placed while no rule existed, taken in by the first rule (held: live; counted: paid). */
  | { kind: 'adopt'; id: number; dt: number; counted: boolean }
  | { kind: 'prune'; dt: number }
  | { kind: 'compact'; dt: number };

const dt = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 59 }).map((m) => m * MINUTE_MS) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 23 }).map((h) => h * 60 * MINUTE_MS) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20 }).map((d) => d * DAY_MS) },
);
const id = fc.integer({ min: 0, max: ORDER_IDS.length - 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('hold' as const), id, dt }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('confirm' as const), id, dt }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), id, dt }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('no_show' as const), id, dt }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('prune' as const), dt }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), dt }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('adopt' as const), id, dt, counted: fc.boolean() }) },
);

const rules = arbitraryRules({ t0: T0, rollingDaysMax: 40, startDayMin: -5, startDayMax: 120, spanDaysMax: 60 });

/** What the buyer has done, kept naively: never pruned, never bounded. */
interface Model {
  live: Map<string, UsageOrder & { status: 'held' | 'counted' }>;
  released: Set<string>;
  noShows: Map<string, NoShow>;
}

interface Run {
  state: BuyerState;
  events: BuyerEvent[];
  model: Model;
  /** How the holds ended, for the coverage check. */
  outcomes: Record<string, number>;
}

function run(rs: Rule[], facts: Omit<UsageOrder, 'createdAt'>[], steps: Step[], jitter: number[]): Run {
  const set = compileRules(rs);
  const state = emptyBuyer();
  const events: BuyerEvent[] = [];
  const model: Model = { live: new Map(), released: new Set(), noShows: new Map() };
  const outcomes: Record<string, number> = {};
  // An order is created when first mentioned (a little before now), and keeps that time.
  const createdAt = new Map<string, number>();
  // A no-show's time is a fact of its order: the first time it is noticed, then the same.
  const noShowAt = new Map<string, number>();
  let now = T0;
  /** An order was adopted: adoption does not evaluate, so a group may be over a max from then on. */
  let adopted = false;
  steps.forEach((step, i) => {
    let s = step;
    now += s.dt;
    let command: BuyerCommand;
    let order: BuyerOrderFacts | undefined;
    if (s.kind === 'prune') command = { type: 'prune', rules: set };
    else if (s.kind === 'compact') command = { type: 'compact' };
    else {
      const orderId = ORDER_IDS[s.id]!;
      if (!createdAt.has(orderId)) createdAt.set(orderId, now - (jitter[i % jitter.length] ?? 0));
      order = { orderId, ...facts[s.id]!, createdAt: createdAt.get(orderId)! };
      // A paid order is never released (its release is refund_required's, before the payment).
      if (s.kind === 'adopt' && model.released.has(orderId)) s = { ...s, counted: false };
      command =
        s.kind === 'adopt'
          ? { type: 'adopt', order, status: s.counted ? 'counted' : 'held' }
          : s.kind === 'hold'
          ? { type: 'hold', order, rules: set }
          : s.kind === 'confirm'
            ? { type: 'confirm', orderId }
            : s.kind === 'release'
              ? { type: 'release', orderId, reason: 'cancelled' }
              : { type: 'no_show', order, at: noShowAt.get(orderId) ?? noShowAt.set(orderId, now).get(orderId)! };
    }
    const before = JSON.stringify(buyerToSnapshot(state));
    const d = decideBuyer(state, command, now);
    expect(JSON.stringify(buyerToSnapshot(state))).toBe(before); // decide never changes the state
    if (s.kind === 'hold' && state.ledger) outcomes.hold_with_ledger = (outcomes.hold_with_ledger ?? 0) + 1;
    for (const e of d.events) evolveBuyer(state, e);
    events.push(...d.events);
    // The ledger (when kept) is the counted orders again, in the same order, with the same facts.
    if (state.ledger) {
      const orders = [...state.orders.values()];
      expect(state.ledger.ids).toEqual(orders.map((o) => o.orderId));
      expect(state.ledger.qty).toEqual(orders.map((o) => o.qty));
      expect(state.ledger.createdAt).toEqual(orders.map((o) => o.createdAt));
      state.ledger.facts.forEach((f, k) => expect(f).toEqual({ skuId: orders[k]!.skuId, date: orders[k]!.date, merchantId: orders[k]!.merchantId, attributes: orders[k]!.attributes }));
    } else {
      expect(state.orders.size).toBeLessThan(LEDGER_ORDERS_MIN);
    }

    // The model's answer.
    if (d.reply.outcome === 'pruned') {
      for (const k of ['orders', 'noShows', 'tombstones'] as const) if (d.reply[k] > 0) outcomes[`pruned_${k}`] = (outcomes[`pruned_${k}`] ?? 0) + 1;
      // ... of which by id: what no rule reaches by its own facts, within the bound by time.
      for (const e of d.events) {
        if (e.type !== 'pruned') continue;
        if (e.orderIds) outcomes.pruned_order_ids = (outcomes.pruned_order_ids ?? 0) + 1;
        if (e.noShowIds) outcomes.pruned_no_show_ids = (outcomes.pruned_no_show_ids ?? 0) + 1;
      }
    }
    if (s.kind === 'hold') {
      const o = order!;
      outcomes[d.reply.outcome] = (outcomes[d.reply.outcome] ?? 0) + 1;
      if (d.reply.outcome === 'stale') {
        // Only an order created before what prune may have forgotten.
        expect(o.createdAt).toBeLessThan(now - TOMBSTONE_KEEP_MS);
      } else if (model.released.has(o.orderId)) {
        expect(d.reply).toEqual({ outcome: 'released_before', orderId: o.orderId });
      } else if (model.live.has(o.orderId)) {
        expect(d).toEqual({ events: [], reply: { outcome: 'held', orderId: o.orderId } });
      } else {
        // Windows reach back from the candidate's creation (API.md: orders created in the last N×24 h
        // before it), however late its hold is decided.
        const expected = referenceEvaluate(rs, [...model.live.values()], [...model.noShows.values()], o, Math.min(o.createdAt, now));
        if (expected.ok) {
          expect(d.reply).toEqual({ outcome: 'held', orderId: o.orderId });
          model.live.set(o.orderId, { ...o, status: 'held' });
        } else {
          expect(d.reply).toEqual({ outcome: 'limit_exceeded', ruleId: expected.ruleId, reason: expected.reason });
        }
      }
    } else if (s.kind === 'adopt') {
      const o = order!;
      const status = s.counted ? 'counted' : 'held';
      outcomes[`adopt_${d.reply.outcome}`] = (outcomes[`adopt_${d.reply.outcome}`] ?? 0) + 1;
      const known = model.live.get(o.orderId);
      if (d.reply.outcome === 'stale') {
        // Only a live order created before what prune may have forgotten; a paid one is final.
        expect(s.counted).toBe(false);
        expect(o.createdAt).toBeLessThan(now - TOMBSTONE_KEEP_MS);
      } else if (model.released.has(o.orderId)) {
        expect(d).toEqual({ events: [], reply: { outcome: 'released_before', orderId: o.orderId } });
      } else if (known) {
        if (s.counted) known.status = 'counted';
        expect(d.reply).toEqual({ outcome: 'adopted', status: known.status });
      } else {
        expect(d.reply).toEqual({ outcome: 'adopted', status });
        model.live.set(o.orderId, { ...o, status });
        adopted = true;
      }
    } else if (s.kind === 'confirm') {
      const o = model.live.get(ORDER_IDS[s.id]!);
      if (o) o.status = 'counted';
    } else if (s.kind === 'release') {
      model.live.delete(ORDER_IDS[s.id]!);
      model.released.add(ORDER_IDS[s.id]!);
    } else if (s.kind === 'no_show') {
      if (!model.noShows.has(order!.orderId)) model.noShows.set(order!.orderId, { ...order!, at: noShowAt.get(order!.orderId)! });
    }

    // What the state holds is what the model holds, less what prune dropped (old enough to be stale).
    for (const [orderId, o] of state.orders) expect(model.live.get(orderId)).toEqual(o);
    for (const [orderId, o] of model.live) if (!state.orders.has(orderId)) expect(o.createdAt).toBeLessThan(state.acceptFrom_ms);
    for (const [orderId, n] of state.noShows) expect(model.noShows.get(orderId)).toEqual(n);
    // Released is released for good: usage of a released order never comes back.
    for (const orderId of model.released) expect(state.orders.has(orderId)).toBe(false);
    // No group of any rule is over a max, now (model.live is a superset of state.orders).
    for (const r of adopted ? [] : rs) {
      for (const g of groupsOf(r, [...model.live.values()], now)) expect(overMax(r, g), `rule ${r.id} at ${i}`).toBeUndefined();
    }
  });
  return { state, events, model, outcomes };
}

const jitters = fc.array(fc.integer({ min: 0, max: 30 * MINUTE_MS }), { minLength: 1, maxLength: 8 });
const world = fc.array(orderFacts, { minLength: ORDER_IDS.length, maxLength: ORDER_IDS.length });

describe('buyer limit state', () => {
  it('refuses exactly what the rules refuse, never passes a max, never counts a released order, and replays to the same state', () => {
    const totals: Record<string, number> = {};
    fc.assert(
      fc.property(rules, world, fc.array(step, { maxLength: 80, size: 'max' }), jitters, (rs, facts, steps, jitter) => {
        const { state, events, outcomes } = run(rs, facts, steps, jitter);
        for (const [k, n] of Object.entries(outcomes)) totals[k] = (totals[k] ?? 0) + n;
        const replayed = events.reduce(evolveBuyer, emptyBuyer());
        expect(buyerToSnapshot(replayed)).toEqual(buyerToSnapshot(state));
        // ... also through JSON, as the journal stores the events.
        const fromJournal = (JSON.parse(JSON.stringify(events)) as BuyerEvent[]).reduce(evolveBuyer, emptyBuyer());
        expect(buyerToSnapshot(fromJournal)).toEqual(buyerToSnapshot(state));
        // A compacted journal (its last `restored` event and what follows, the rest dropped) rebuilds
        // the same state, through JSON as the journal stores it.
        const from = events.map((e) => e.type).lastIndexOf('restored');
        if (from >= 0) {
          totals.compacted_replays = (totals.compacted_replays ?? 0) + 1;
          const compacted = (JSON.parse(JSON.stringify(events.slice(from))) as BuyerEvent[]).reduce(evolveBuyer, emptyBuyer());
          expect(buyerToSnapshot(compacted)).toEqual(buyerToSnapshot(state));
          expect(compacted.ledger === undefined).toBe(state.ledger === undefined);
          // ... also when its `restored` event holds the plain format journals written before the
          // compact one hold.
          const plain = events.slice(from).map((e): BuyerEvent => (e.type === 'restored' ? { ...e, snapshot: buyerToSnapshot(buyerFromSnapshot(e.snapshot)) } : e));
          const fromPlain = (JSON.parse(JSON.stringify(plain)) as BuyerEvent[]).reduce(evolveBuyer, emptyBuyer());
          expect(buyerToSnapshot(fromPlain)).toEqual(buyerToSnapshot(state));
        }
        for (const snapshot of [buyerToSnapshot(state), buyerToCompactSnapshot(state)]) {
          const roundTrip = buyerFromSnapshot(JSON.parse(JSON.stringify(snapshot)));
          expect(buyerToSnapshot(roundTrip)).toEqual(buyerToSnapshot(state));
        }
      }),
      { numRuns: 600 },
    );
    // The runs exercised every answer of a hold (not a vacuous pass).
    for (const outcome of ['held', 'limit_exceeded', 'released_before', 'stale']) expect(totals[outcome] ?? 0, outcome).toBeGreaterThan(100);
    // ... and of an adoption.
    for (const outcome of ['adopt_adopted', 'adopt_released_before', 'adopt_stale']) expect(totals[outcome] ?? 0, outcome).toBeGreaterThan(20);
    // ... many of them decided from the compact ledger (buyers with LEDGER_ORDERS_MIN orders or more).
    expect(totals.hold_with_ledger ?? 0, 'hold_with_ledger').toBeGreaterThan(100);
    // ... and prune dropped orders, no-shows and tombstones many times over.
    for (const dropped of ['pruned_orders', 'pruned_noShows', 'pruned_tombstones']) expect(totals[dropped] ?? 0, dropped).toBeGreaterThan(20);
    // ... many of them by id: orders and no-shows no rule can reach by their facts (`match`, groupBy).
    for (const dropped of ['pruned_order_ids', 'pruned_no_show_ids']) expect(totals[dropped] ?? 0, dropped).toBeGreaterThan(20);
    // ... and compacted journals were replayed.
    expect(totals.compacted_replays ?? 0, 'compacted_replays').toBeGreaterThan(100);
  });

  it('prunes: with a 2-day rule, orders, no-shows and tombstones older than the 31-day floor go, and the state stays bounded', () => {
    fc.assert(
      fc.property(world, fc.array(step, { minLength: 50, maxLength: 120, size: 'max' }), jitters, (facts, steps, jitter) => {
        const rs: Rule[] = [{ id: 'two-days', window: { rollingDays: 2 }, max: { units: 6, noShows: 2 } }];
        // Every 10th step a prune, and one at the end.
        const pruned = [...steps.flatMap((s, i) => (i % 10 === 9 ? [s, { kind: 'prune' as const, dt: 0 }] : [s])), { kind: 'prune' as const, dt: 0 }];
        const { state } = run(rs, facts, pruned, jitter);
        const now = T0 + pruned.reduce((t, s) => t + s.dt, 0);
        for (const o of state.orders.values()) expect(o.createdAt).toBeGreaterThanOrEqual(now - 31 * DAY_MS);
        for (const n of state.noShows.values()) expect(n.at).toBeGreaterThanOrEqual(now - 31 * DAY_MS);
        for (const at of state.released.values()) expect(at).toBeGreaterThanOrEqual(now - TOMBSTONE_KEEP_MS);
      }),
      { numRuns: 200 },
    );
  });

  it('prunes, with an all-time rule on one SKU and a 2-day rule, every other SKU\'s orders and no-shows older than the 31-day floor', () => {
    fc.assert(
      fc.property(world, fc.array(step, { minLength: 50, maxLength: 120, size: 'max' }), jitters, (facts, steps, jitter) => {
        const rs: Rule[] = [
          { id: 'a-ever', match: { skuIds: ['a'] }, max: { orders: 3, noShows: 2 } },
          { id: 'two-days', window: { rollingDays: 2 }, max: { units: 6, noShows: 2 } },
        ];
        const pruned = [...steps.flatMap((s, i) => (i % 10 === 9 ? [s, { kind: 'prune' as const, dt: 0 }] : [s])), { kind: 'prune' as const, dt: 0 }];
        const { state } = run(rs, facts, pruned, jitter);
        const now = T0 + pruned.reduce((t, s) => t + s.dt, 0);
        for (const o of state.orders.values()) if (o.createdAt < now - 31 * DAY_MS) expect(o.skuId).toBe('a');
        for (const n of state.noShows.values()) if (n.at < now - 31 * DAY_MS) expect(n.skuId).toBe('a');
      }),
      { numRuns: 200 },
    );
  });

  it('prunes nothing a long campaign (fixed window) can still count, and its no-shows never', () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    const campaign = fc
      .tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 40, max: 120 }), fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 3 }))
      .map(([start, days, units, noShows]): Rule[] => [
        { id: 'campaign', window: { from: iso(T0 + start * DAY_MS), to: iso(T0 + (start + days) * DAY_MS) }, max: { units, noShows } },
      ]);
    fc.assert(
      fc.property(campaign, world, fc.array(step, { minLength: 40, maxLength: 120, size: 'max' }), jitters, (rs, facts, steps, jitter) => {
        run(rs, facts, steps.flatMap((s, i) => (i % 5 === 4 ? [s, { kind: 'prune' as const, dt: 0 }] : [s])), jitter);
      }),
      { numRuns: 200 },
    );
  });
});

describe('buyer limit state, by example', () => {
  const facts: BuyerOrderFacts = { orderId: 'o1', skuId: 'louvre', date: '2026-12-20', merchantId: 'm1', attributes: { venue: 'louvre' }, qty: 1, createdAt: T0 };
  const oneTicket = compileRules([{ id: 'venue-date', groupBy: ['venue', 'date'], max: { units: 1 } }]);

  function apply(state: BuyerState, command: BuyerCommand, now: number) {
    const d = decideBuyer(state, command, now);
    for (const e of d.events) evolveBuyer(state, e);
    return d;
  }

  it('a cancel that overtakes its own hold leaves no usage: the late hold is refused, and the next order passes', () => {
    const s = emptyBuyer();
    expect(apply(s, { type: 'release', orderId: 'o1', reason: 'cancelled' }, T0 + 1).events).toHaveLength(1);
    expect(apply(s, { type: 'hold', order: facts, rules: oneTicket }, T0 + 2)).toEqual({ events: [], reply: { outcome: 'released_before', orderId: 'o1' } });
    expect(s.orders.size).toBe(0);
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'o2' }, rules: oneTicket }, T0 + 3).reply).toEqual({ outcome: 'held', orderId: 'o2' });
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'o3' }, rules: oneTicket }, T0 + 4).reply).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'venue-date' });
  });

  it("judges a rolling window back from the candidate's own creation, not from when its hold is decided (later, under load)", () => {
    const daily = compileRules([{ id: 'daily', window: { rollingDays: 1 }, max: { orders: 1 } }]);
    const s = emptyBuyer();
    expect(apply(s, { type: 'hold', order: facts, rules: daily }, T0 + 5).reply.outcome).toBe('held');
    // Created a millisecond inside 24 h of the first, decided 300 ms later: the first is still in its window.
    const inside = { ...facts, orderId: 'o2', createdAt: T0 + DAY_MS - 1 };
    expect(apply(s, { type: 'hold', order: inside, rules: daily }, T0 + DAY_MS + 300).reply).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'daily' });
    // Created 24 h after it: passes.
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'o3', createdAt: T0 + DAY_MS }, rules: daily }, T0 + DAY_MS + 300).reply.outcome).toBe('held');
  });

  it('hold, confirm and release are idempotent; a release frees the group; a retried hold after it is refused', () => {
    const s = emptyBuyer();
    expect(apply(s, { type: 'hold', order: facts, rules: oneTicket }, T0).events).toHaveLength(1);
    expect(apply(s, { type: 'hold', order: facts, rules: oneTicket }, T0 + 1)).toEqual({ events: [], reply: { outcome: 'held', orderId: 'o1' } });
    expect(apply(s, { type: 'confirm', orderId: 'o1' }, T0 + 2).events).toHaveLength(1);
    expect(apply(s, { type: 'confirm', orderId: 'o1' }, T0 + 3)).toEqual({ events: [], reply: { outcome: 'confirmed' } });
    expect(apply(s, { type: 'confirm', orderId: 'nope' }, T0 + 3)).toEqual({ events: [], reply: { outcome: 'not_held' } });
    expect(s.orders.get('o1')?.status).toBe('counted');
    expect(apply(s, { type: 'release', orderId: 'o1', reason: 'refund_required' }, T0 + 4).events).toHaveLength(1);
    expect(apply(s, { type: 'release', orderId: 'o1', reason: 'refund_required' }, T0 + 5)).toEqual({ events: [], reply: { outcome: 'released' } });
    expect(apply(s, { type: 'hold', order: facts, rules: oneTicket }, T0 + 6).reply.outcome).toBe('released_before');
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'o2', createdAt: T0 + 7 }, rules: oneTicket }, T0 + 7).reply.outcome).toBe('held');
  });

  it('a rule change applies to the next hold: the command carries the rules in force', () => {
    const s = emptyBuyer();
    expect(apply(s, { type: 'hold', order: facts, rules: compileRules([]) }, T0).reply.outcome).toBe('held');
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'o2' }, rules: compileRules([]) }, T0).reply.outcome).toBe('held');
    // Tightened below what the buyer holds: nothing is taken back, the next order is refused.
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'o3' }, rules: oneTicket }, T0).reply).toMatchObject({ outcome: 'limit_exceeded', reason: { kind: 'units', max: 1, value: 3 } });
    expect(s.orders.size).toBe(2);
  });

  it('a no-show counts with the facts the order was held with, and once', () => {
    const s = emptyBuyer();
    const blocked = compileRules([{ id: 'no-show', max: { noShows: 1 } }]);
    apply(s, { type: 'hold', order: facts, rules: blocked }, T0);
    const d = apply(s, { type: 'no_show', order: { ...facts, skuId: 'other' }, at: T0 + DAY_MS }, T0 + DAY_MS);
    expect(d.events).toEqual([{ type: 'no_show_recorded', noShow: { ...facts, at: T0 + DAY_MS }, at: T0 + DAY_MS }]);
    expect(apply(s, { type: 'no_show', order: facts, at: T0 + 2 * DAY_MS }, T0 + 2 * DAY_MS).events).toEqual([]);
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'o2', createdAt: T0 + 2 * DAY_MS }, rules: blocked }, T0 + 2 * DAY_MS).reply).toEqual({
      outcome: 'limit_exceeded',
      ruleId: 'no-show',
      reason: { kind: 'noShows', max: 1, value: 1 },
    });
  });

  it('prune drops the orders of SKUs a rule without a window does not match: 10,000 paid coffee orders an hour apart beside a vip-once rule never reach BUYER_ORDERS_MAX', () => {
    // The review's case: `vip-once` (vip-A, one order, no window) and a 7-day rule. Pruned by time
    // alone, the window-less rule kept every order of every SKU, and after ~14 months the buyer's
    // 10,001st coffee order was refused too_many_orders though no rule counted the old ones.
    const rules = compileRules([
      { id: 'vip-once', match: { skuIds: ['vip-A'] }, max: { orders: 1 } },
      { id: 'weekly', window: { rollingDays: 7 }, max: { units: 500 } },
    ]);
    const s = emptyBuyer();
    const HOUR_MS = 60 * MINUTE_MS;
    const coffee = (i: number): BuyerOrderFacts => ({ orderId: `coffee-${i}`, skuId: 'coffee-B', date: 'open', merchantId: 'm1', attributes: { venue: 'v1' }, qty: 1, createdAt: T0 + i * HOUR_MS });
    const vip: BuyerOrderFacts = { orderId: 'vip-1', skuId: 'vip-A', date: 'open', merchantId: 'm1', attributes: {}, qty: 1, createdAt: T0 - HOUR_MS };
    expect(apply(s, { type: 'hold', order: vip, rules }, vip.createdAt).reply.outcome).toBe('held');
    apply(s, { type: 'confirm', orderId: 'vip-1' }, vip.createdAt);
    let dropped = 0;
    for (let i = 0; i < BUYER_ORDERS_MAX; i++) {
      const now = T0 + i * HOUR_MS;
      // The limit actor prunes with its batch (at most once an hour), then decides the order.
      const p = apply(s, { type: 'prune', rules }, now);
      if (p.reply.outcome === 'pruned') dropped += p.reply.orders;
      expect(apply(s, { type: 'hold', order: coffee(i), rules }, now).reply, `order ${i}`).toEqual({ outcome: 'held', orderId: `coffee-${i}` });
      apply(s, { type: 'confirm', orderId: `coffee-${i}` }, now);
    }
    const now = T0 + BUYER_ORDERS_MAX * HOUR_MS;
    expect(apply(s, { type: 'hold', order: coffee(BUYER_ORDERS_MAX), rules }, now).reply.outcome).toBe('held');
    // What is left: the last 31 days of coffee (a day more: holds up to a day late are not stale),
    // and the vip order the window-less rule still counts.
    expect(dropped).toBeGreaterThan(BUYER_ORDERS_MAX - 33 * 24);
    expect(s.orders.size).toBeLessThan(33 * 24);
    expect(s.orders.has('vip-1')).toBe(true);
    expect(apply(s, { type: 'hold', order: { ...vip, orderId: 'vip-2', createdAt: now }, rules }, now).reply).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'vip-once' });
  });

  it('prune drops ids in events of at most PRUNE_IDS_PER_EVENT_MAX, which replay through JSON to the same state', () => {
    const rules = compileRules([{ id: 'vip-once', match: { skuIds: ['vip-A'] }, max: { orders: 1, noShows: 1 } }]);
    const s = emptyBuyer();
    const n = 2 * PRUNE_IDS_PER_EVENT_MAX + 10;
    const events: BuyerEvent[] = [];
    const record = (command: BuyerCommand, now: number) => events.push(...apply(s, command, now).events);
    for (let i = 0; i < n; i++) {
      const order: BuyerOrderFacts = { ...facts, orderId: `o-${i}`, createdAt: T0 + i };
      record({ type: 'hold', order, rules }, T0 + i);
      record({ type: 'no_show', order: { ...order, orderId: `n-${i}` }, at: T0 + DAY_MS }, T0 + DAY_MS);
    }
    const later = T0 + 40 * DAY_MS;
    const d = apply(s, { type: 'prune', rules }, later);
    events.push(...d.events);
    expect(d.reply).toEqual({ outcome: 'pruned', orders: n, noShows: n, tombstones: 0 });
    expect(d.events).toHaveLength(Math.ceil((2 * n) / PRUNE_IDS_PER_EVENT_MAX));
    for (const e of d.events) {
      const ids = e.type === 'pruned' ? (e.orderIds?.length ?? 0) + (e.noShowIds?.length ?? 0) : 0;
      expect(ids).toBeGreaterThan(0);
      expect(ids).toBeLessThanOrEqual(PRUNE_IDS_PER_EVENT_MAX);
    }
    expect(s.orders.size + s.noShows.size).toBe(0);
    const replayed = (JSON.parse(JSON.stringify(events)) as BuyerEvent[]).reduce(evolveBuyer, emptyBuyer());
    expect(buyerToSnapshot(replayed)).toEqual(buyerToSnapshot(s));
  });

  it('prune keeps what a long rolling window counts for a hold up to a day late (evaluated at its order\'s creation)', () => {
    const rules = compileRules([{ id: 'once-in-40-days', window: { rollingDays: 40 }, max: { orders: 1 } }]);
    const s = emptyBuyer();
    apply(s, { type: 'hold', order: facts, rules }, T0);
    const now = T0 + 40 * DAY_MS + 12 * 60 * MINUTE_MS;
    expect(apply(s, { type: 'prune', rules }, now).reply).toMatchObject({ orders: 0 });
    // Created 39.6 days after o1 (not stale: within a day of now), held now: its 40 days reach o1.
    const late = { ...facts, orderId: 'o2', createdAt: T0 + 39 * DAY_MS + 14 * 60 * MINUTE_MS };
    expect(apply(s, { type: 'hold', order: late, rules }, now).reply).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'once-in-40-days' });
  });

  it('prune keeps what an all-time rule can reach, drops old tombstones and then refuses a hold that old as stale', () => {
    const s = emptyBuyer();
    const allTime = compileRules([{ id: 'ever', max: { orders: 5 } }]);
    apply(s, { type: 'hold', order: facts, rules: allTime }, T0);
    apply(s, { type: 'release', orderId: 'gone', reason: 'expired' }, T0);
    const later = T0 + 400 * DAY_MS;
    const d = apply(s, { type: 'prune', rules: allTime }, later);
    expect(d.reply).toEqual({ outcome: 'pruned', orders: 0, noShows: 0, tombstones: 1 });
    expect([...s.orders.keys()]).toEqual(['o1']);
    expect(s.released.size).toBe(0);
    expect(apply(s, { type: 'hold', order: { ...facts, orderId: 'gone' }, rules: allTime }, later).reply).toEqual({ outcome: 'stale', acceptFrom_ms: later - TOMBSTONE_KEEP_MS });
    // Without rules, the order goes too; nothing to drop is no event.
    expect(apply(s, { type: 'prune', rules: compileRules([]) }, later).reply).toMatchObject({ orders: 1 });
    expect(apply(s, { type: 'prune', rules: compileRules([]) }, later).events).toEqual([]);
  });
});
