// Proves the inventory ledger sells exactly what an independent tally of the commands allows (never
// more than the total, never less than is available) and that replaying its events rebuilds that
// tally's state: fast-check drives random command sequences through decide/evolve beside a plain model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  available,
  decide,
  emptyInventory,
  evolve,
  fromSnapshot,
  toSnapshot,
  type InventoryCommand,
  type InventoryEvent,
  type InventorySnapshot,
  type InventoryState,
  type Reservation,
  FREE_PAYMENT_ID,
  INVENTORY_SNAPSHOT_FORMAT,
} from '../../engine/index.ts';

const orderIds = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'o8'];
const users = ['alice', 'bob'];

// Reserves weigh most, mostly of a few units and long enough to overlap, so that many runs hold
// several live reservations at once and come to their last units.
const command: fc.Arbitrary<InventoryCommand> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        type: fc.constant('reserve' as const),
        orderId: fc.constantFrom(...orderIds),
        userId: fc.constantFrom(...users),
        qty: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 120 }) }),
        unitPriceCents: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 5, arbitrary: fc.integer({ min: 0, max: 5000 }) }),
        ttl_ms: fc.integer({ min: 0, max: 20_000 }),
        idempotency: fc.record({ key: fc.constantFrom('k1', 'k2'), hash: fc.constantFrom('h1', 'h2') }),
        limited: fc.constant(true as const),
      },
      { requiredKeys: ['type', 'orderId', 'userId', 'qty', 'unitPriceCents', 'ttl_ms'] },
    ),
  },
  fc.record({ type: fc.constant('cancel' as const), orderId: fc.constantFrom(...orderIds), userId: fc.constantFrom(...users) }),
  fc.record({ type: fc.constant('expire_due' as const), max_orders: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ type: fc.constant('confirm_sold' as const), orderId: fc.constantFrom(...orderIds), paymentId: fc.constantFrom('p1', 'p2') }),
  fc.record({ type: fc.constant('set_total' as const), total: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: -5, max: 300 }), fc.constantFrom(-1, 2.5)) }),
  fc.record({ type: fc.constant('count_keys' as const), keysTotal: fc.integer({ min: -2, max: 50 }) }),
  fc.record({ type: fc.constant('limit_reservations' as const), from_ms: fc.integer({ min: 1_000_000, max: 1_200_000 }) }),
);

const step = fc.tuple(command, fc.integer({ min: 0, max: 3_000 }));

function checkInvariants(s: InventoryState): void {
  expect(s.reserved).toBeGreaterThanOrEqual(0);
  expect(s.sold).toBeGreaterThanOrEqual(0);
  expect(s.reserved + s.sold).toBeLessThanOrEqual(s.total);
  expect(available(s)).toBeGreaterThanOrEqual(0);
  let sum = 0;
  for (const r of s.reservations.values()) sum += r.qty;
  expect(sum).toBe(s.reserved);
}

/**
 * The ledger as a plain tally, written from the rules (API.md, engine/inventory.ts's comments) and not
 * from decide/evolve: the total in force, the card keys counted, the units sold, and each live
 * reservation (in arrival order) with its units.
 */
interface Model {
  total: number;
  keysCounted: number;
  sold: number;
  live: Map<string, Reservation>;
}

const TOTAL_MAX = 1_000_000_000;
const DAY_MS = 86_400_000;
const newModel = (): Model => ({ total: 0, keysCounted: 0, sold: 0, live: new Map() });
const liveUnits = (m: Model): number => [...m.live.values()].reduce((n, r) => n + r.qty, 0);
const modelAvailable = (m: Model): number => m.total - liveUnits(m) - m.sold;
const whole = (n: number, min: number, max: number): boolean => Number.isSafeInteger(n) && n >= min && n <= max;
/** A reservation's fields, whatever object carries them (an event, the index's copy, the model's). */
const view = (r: Reservation) => ({ orderId: r.orderId, userId: r.userId, qty: r.qty, amountCents: r.amountCents, createdAt: r.createdAt, expiresAt: r.expiresAt, limited: r.limited === true });
const facts = (r: Reservation) => ({ orderId: r.orderId, userId: r.userId, qty: r.qty, amountCents: r.amountCents, createdAt: r.createdAt, expiresAt: r.expiresAt });
const released = (r: Reservation, reason: 'cancelled' | 'expired', at: number): InventoryEvent => ({ type: 'released', ...facts(r), reason, at });

function modelSnapshot(m: Model): InventorySnapshot {
  return {
    format: INVENTORY_SNAPSHOT_FORMAT,
    total: m.total,
    reserved: liveUnits(m),
    sold: m.sold,
    reservations: [...m.live.values()].map((r) => (r.limited ? { ...facts(r), limited: true } : facts(r))),
    keysCounted: m.keysCounted,
  };
}

type Outcomes = Record<string, number>;

/** Checks one decision against the model's answer to the same command, then moves the model on. */
function expectModelDecision(m: Model, cmd: InventoryCommand, now: number, d: ReturnType<typeof decide>, outcomes: Outcomes): void {
  const seen = (k: string) => void (outcomes[k] = (outcomes[k] ?? 0) + 1);
  const totalSet = { outcome: 'total_set', total: m.total, reserved: liveUnits(m), sold: m.sold };
  switch (cmd.type) {
    case 'reserve': {
      if (!whole(cmd.qty, 1, 100) || !whole(cmd.unitPriceCents, 0, Number.MAX_SAFE_INTEGER / 100) || !whole(cmd.ttl_ms, 0, 365 * DAY_MS) || m.live.has(cmd.orderId)) {
        expect(d).toMatchObject({ events: [], reply: { outcome: 'invalid_request' } });
        seen(m.live.has(cmd.orderId) && whole(cmd.qty, 1, 100) ? 'reserve_id_in_use' : 'reserve_invalid');
        return;
      }
      const left = modelAvailable(m);
      if (cmd.qty > left) {
        // Sold out exactly when the units asked exceed what is neither sold nor reserved.
        expect(d.reply).toEqual({ outcome: 'sold_out', available: left });
        expect(d.events).toEqual(cmd.idempotency ? [{ type: 'refused', userId: cmd.userId, error: 'sold_out', qty: cmd.qty, at: now, idempotency: cmd.idempotency }] : []);
        seen(left > 0 ? 'sold_out_partly_left' : 'sold_out');
        return;
      }
      // Granted whenever they fit, however many reservations are live.
      const r: Reservation = { orderId: cmd.orderId, userId: cmd.userId, qty: cmd.qty, amountCents: cmd.qty * cmd.unitPriceCents, createdAt: now, expiresAt: now + cmd.ttl_ms };
      if (cmd.limited) r.limited = true;
      expect(d.reply.outcome).toBe('reserved');
      if (d.reply.outcome === 'reserved') expect(view(d.reply.reservation)).toEqual(view(r));
      const event = { type: 'reserved', ...r, ...(cmd.idempotency ? { idempotency: cmd.idempotency } : {}) };
      if (r.amountCents === 0) {
        // Free: sold in the same decision, no payment.
        expect(d.events).toEqual([event, { type: 'sold', ...facts(r), at: now, paymentId: FREE_PAYMENT_ID }]);
        m.sold += r.qty;
        seen('reserved_free');
      } else {
        expect(d.events).toEqual([event]);
        if (m.live.size >= 3) seen('reserved_beside_3_live');
        if (cmd.qty === left) seen('reserved_last_units');
        m.live.set(r.orderId, r);
        seen('reserved');
      }
      return;
    }
    case 'cancel': {
      const r = m.live.get(cmd.orderId);
      if (!r || r.userId !== cmd.userId) {
        expect(d).toEqual({ events: [], reply: { outcome: 'not_reserved' } });
        seen(r ? 'cancel_by_other' : 'cancel_not_reserved');
      } else if (r.expiresAt <= now) {
        // Its expiry has come: it expires now, and the cancel finds nothing.
        expect(d).toEqual({ events: [released(r, 'expired', now)], reply: { outcome: 'not_reserved' } });
        m.live.delete(r.orderId);
        seen('cancel_met_expired');
      } else {
        expect(d.events).toEqual([released(r, 'cancelled', now)]);
        expect(d.reply.outcome).toBe('released');
        if (d.reply.outcome === 'released') expect(view(d.reply.reservation)).toEqual(view(r));
        m.live.delete(r.orderId);
        seen('cancelled');
      }
      return;
    }
    case 'expire_due': {
      // The live ones due by now, in arrival order, at most max_orders of them.
      const due = [...m.live.values()].filter((r) => r.expiresAt <= now);
      const taken = due.slice(0, cmd.max_orders);
      const later = [...m.live.values()].filter((r) => r.expiresAt > now).map((r) => r.expiresAt);
      const next = due.length > cmd.max_orders ? now : later.length > 0 ? Math.min(...later) : undefined;
      expect(d.events).toEqual(taken.map((r) => released(r, 'expired', now)));
      expect(d.reply).toEqual({ outcome: 'expired', count: taken.length, nextExpiresAt: next });
      for (const r of taken) m.live.delete(r.orderId);
      seen(due.length > cmd.max_orders ? 'expired_capped' : taken.length > 0 ? 'expired' : 'expired_none');
      return;
    }
    case 'confirm_sold': {
      const r = m.live.get(cmd.orderId);
      if (!r) {
        expect(d).toEqual({ events: [], reply: { outcome: 'not_reserved' } });
        seen('confirm_not_reserved');
      } else if (r.expiresAt <= now) {
        // A late payment takes no stock: the reservation expires now.
        expect(d).toEqual({ events: [released(r, 'expired', now)], reply: { outcome: 'not_reserved' } });
        m.live.delete(r.orderId);
        seen('confirm_met_expired');
      } else {
        expect(d.events).toEqual([{ type: 'sold', ...facts(r), at: now, paymentId: cmd.paymentId }]);
        expect(d.reply).toMatchObject({ outcome: 'sold', paymentId: cmd.paymentId });
        if (d.reply.outcome === 'sold') expect(view(d.reply.reservation)).toEqual(view(r));
        m.live.delete(r.orderId);
        m.sold += r.qty;
        seen('sold');
      }
      return;
    }
    case 'set_total': {
      if (!whole(cmd.total, 0, TOTAL_MAX)) {
        expect(d).toMatchObject({ events: [], reply: { outcome: 'invalid_request' } });
        seen('set_total_invalid');
      } else if (cmd.total < liveUnits(m) + m.sold) {
        expect(d).toMatchObject({ events: [], reply: { outcome: 'invalid_state' } });
        seen('set_total_below_taken');
      } else if (cmd.total === m.total) {
        expect(d).toEqual({ events: [], reply: totalSet });
        seen('set_total_same');
      } else {
        expect(d).toEqual({ events: [{ type: 'total_set', total: cmd.total, at: now }], reply: { ...totalSet, total: cmd.total } });
        m.total = cmd.total;
        seen('set_total');
      }
      return;
    }
    case 'count_keys': {
      const n = cmd.keysTotal - m.keysCounted;
      if (!whole(cmd.keysTotal, 0, TOTAL_MAX)) {
        expect(d).toMatchObject({ events: [], reply: { outcome: 'invalid_request' } });
        seen('count_keys_invalid');
      } else if (n <= 0) {
        expect(d).toEqual({ events: [], reply: { ...totalSet, counted: 0 } });
        seen('count_keys_none_new');
      } else {
        expect(d).toEqual({ events: [{ type: 'keys_counted', keysTotal: cmd.keysTotal, total: m.total + n, at: now }], reply: { ...totalSet, total: m.total + n, counted: n } });
        m.total += n;
        m.keysCounted = cmd.keysTotal;
        seen('count_keys');
      }
      return;
    }
    case 'limit_reservations': {
      const from_ms = Math.max(0, cmd.from_ms);
      const since = [...m.live.values()].filter((r) => r.createdAt >= from_ms);
      expect(d.reply.outcome).toBe('limited');
      if (d.reply.outcome === 'limited') expect(d.reply.reservations.map(view)).toEqual(since.map(view));
      expect(d.events).toEqual(since.some((r) => !r.limited) ? [{ type: 'limited', from_ms, at: now }] : []);
      seen(since.some((r) => !r.limited) ? 'limited' : 'limited_none_new');
      for (const r of since) m.live.set(r.orderId, { ...r, limited: true });
      return;
    }
  }
}

function run(steps: [InventoryCommand, number][], outcomes: Outcomes = {}): { state: InventoryState; events: InventoryEvent[]; model: Model } {
  const state = emptyInventory();
  const model = newModel();
  const events: InventoryEvent[] = [];
  // Units granted, tallied from the emitted events alone: reserved ones, less those released.
  let granted = 0;
  let now = 1_000_000;
  for (const [cmd, dt] of steps) {
    now += dt;
    const before = JSON.stringify(toSnapshot(state));
    const d = decide(state, cmd, now);
    expect(JSON.stringify(toSnapshot(state))).toBe(before); // decide never changes the state
    expectModelDecision(model, cmd, now, d, outcomes);
    for (const e of d.events) {
      if (e.type === 'reserved') granted += e.qty;
      if (e.type === 'released') granted -= e.qty;
      evolve(state, e);
    }
    events.push(...d.events);
    checkInvariants(state);
    // The ledger holds what the model holds: the same units sold, live reservations and total.
    expect(state.sold).toBe(model.sold);
    expect(state.reserved).toBe(liveUnits(model));
    expect(toSnapshot(state)).toEqual(modelSnapshot(model));
    expect(granted).toBe(model.sold + liveUnits(model));
    expect(granted).toBeLessThanOrEqual(model.total);
  }
  return { state, events, model };
}

describe('inventory ledger', () => {
  it('grants a reserve exactly when it fits, settles exactly as the model does, and never yields reserved + sold > total', () => {
    const totals: Outcomes = {};
    fc.assert(fc.property(fc.array(step, { maxLength: 80, size: 'max' }), (steps) => void run(steps, totals)), { numRuns: 500 });
    // Every kind of answer came up many times (not a vacuous pass); a total set to the one in force is
    // rarer (about 20 in a run).
    for (const k of [
      'reserved', 'reserved_free', 'reserved_beside_3_live', 'reserved_last_units', 'reserve_invalid', 'reserve_id_in_use', 'sold_out', 'sold_out_partly_left',
      'cancelled', 'cancel_met_expired', 'cancel_by_other', 'cancel_not_reserved',
      'expired', 'expired_capped', 'expired_none',
      'sold', 'confirm_met_expired', 'confirm_not_reserved',
      'set_total', 'set_total_same', 'set_total_below_taken', 'set_total_invalid',
      'count_keys', 'count_keys_none_new', 'count_keys_invalid',
      'limited', 'limited_none_new',
    ]) {
      expect(totals[k] ?? 0, k).toBeGreaterThan(k === 'set_total_same' ? 4 : 30);
    }
  });

  it('rebuilds the model\'s state by replaying the emitted events, and through a snapshot', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80, size: 'max' }), fc.nat(), (steps, cut) => {
        const { events, model } = run(steps);
        const expected = modelSnapshot(model);
        const replayed = emptyInventory();
        for (const e of events) evolve(replayed, e);
        expect(toSnapshot(replayed)).toEqual(expected);
        // ... also through JSON, as the journal stores the events.
        const fromJournal = emptyInventory();
        for (const e of JSON.parse(JSON.stringify(events)) as InventoryEvent[]) evolve(fromJournal, e);
        expect(toSnapshot(fromJournal)).toEqual(expected);
        // Snapshot at any point, then the rest of the events: same state.
        const k = events.length === 0 ? 0 : cut % (events.length + 1);
        const head = emptyInventory();
        for (const e of events.slice(0, k)) evolve(head, e);
        const resumed = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(head))));
        for (const e of events.slice(k)) evolve(resumed, e);
        expect(toSnapshot(resumed)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('limit_reservations limits exactly the live reservations created since its time, lists them, and is idempotent', () => {
    let limitedSome = 0;
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 1_000_000, max: 1_150_000 }), (steps, from_ms) => {
        // Stock and a few reservations first, so most runs have live ones on both sides of from_ms.
        const reserves = orderIds.slice(0, 5).map((orderId, i): [InventoryCommand, number] => [
          { type: 'reserve', orderId, userId: users[i % 2]!, qty: 1 + i, unitPriceCents: 100, ttl_ms: 10_000 },
          20_000,
        ]);
        const { state } = run([[{ type: 'set_total', total: 300 }, 0], ...reserves, ...steps]);
        const before = [...state.reservations.values()].map((r) => ({ ...r }));
        const d = decide(state, { type: 'limit_reservations', from_ms }, 3_000_000);
        const since = before.filter((r) => r.createdAt >= from_ms);
        expect(d.reply).toEqual({ outcome: 'limited', reservations: since });
        // One event, whatever the number of reservations it limits; none when none is left unlimited.
        expect(d.events).toEqual(since.some((r) => !r.limited) ? [{ type: 'limited', from_ms, at: 3_000_000 }] : []);
        for (const e of d.events) evolve(state, e);
        limitedSome += since.filter((r) => !r.limited).length;
        // Those are limited now, the others as they were; nothing else changed; a second time, no event.
        expect([...state.reservations.values()]).toEqual(before.map((r) => (r.createdAt >= from_ms ? { ...r, limited: true } : r)));
        checkInvariants(state);
        expect(decide(state, { type: 'limit_reservations', from_ms }, 3_000_001).events).toEqual([]);
      }),
      { numRuns: 300 },
    );
    expect(limitedSome).toBeGreaterThan(100);
  });

  it('limits from -Infinity as from 0, which the journal codec keeps (JSON has no -Infinity)', async () => {
    const { encodeEvent, decodeEvent } = await import('../../actors/inventory-codec.ts');
    const state = emptyInventory();
    for (const e of decide(state, { type: 'set_total', total: 5 }, 1).events) evolve(state, e);
    for (const e of decide(state, { type: 'reserve', orderId: 'o1', userId: 'alice', qty: 2, unitPriceCents: 10, ttl_ms: 100 }, 2).events) evolve(state, e);
    const d = decide(state, { type: 'limit_reservations', from_ms: -Infinity }, 3);
    expect(d.events).toEqual([{ type: 'limited', from_ms: 0, at: 3 }]);
    expect(decodeEvent(JSON.parse(JSON.stringify(encodeEvent(d.events[0]!))))).toEqual(d.events[0]);
    evolve(state, d.events[0]!);
    expect(state.reservations.get('o1')!.limited).toBe(true);
  });

  it('a fence changes nothing and survives the journal codec', async () => {
    const { encodeEvent, decodeEvent } = await import('../../actors/inventory-codec.ts');
    const state = emptyInventory();
    for (const e of decide(state, { type: 'set_total', total: 5 }, 1).events) evolve(state, e);
    for (const e of decide(state, { type: 'reserve', orderId: 'o1', userId: 'alice', qty: 2, unitPriceCents: 10, ttl_ms: 100 }, 2).events) evolve(state, e);
    const before = toSnapshot(state);
    const fence = { type: 'fenced' as const, at: 3 };
    expect(decodeEvent(JSON.parse(JSON.stringify(encodeEvent(fence))))).toEqual(fence);
    evolve(state, fence);
    expect(toSnapshot(state)).toEqual(before);
  });

  it('a probe refuses exactly what the reserve would refuse, and otherwise changes nothing and asks for the hold', () => {
    const reserve = fc.record({
      orderId: fc.constantFrom('p1', 'o1', 'o2'),
      qty: fc.integer({ min: -1, max: 120 }),
      unitPriceCents: fc.integer({ min: 0, max: 5000 }),
      keyed: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), reserve, (steps, r) => {
        const { state } = run(steps);
        const plain: InventoryCommand = { type: 'reserve', orderId: r.orderId, userId: 'carol', qty: r.qty, unitPriceCents: r.unitPriceCents, ttl_ms: 10 };
        if (r.keyed) plain.idempotency = { key: 'k', hash: 'h' };
        const real = decide(state, plain, 2_000_000);
        const probe = decide(state, { ...plain, probe: true }, 2_000_000);
        if (real.reply.outcome === 'reserved') {
          expect(probe).toEqual({ events: [], reply: { outcome: 'hold_required', available: available(state) } });
        } else {
          // sold_out (recorded for a key as always), or the same invalid_request.
          expect(probe).toEqual(real);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('sells the last unit to exactly one of two buyers and refuses the other', () => {
    const s = emptyInventory();
    for (const e of decide(s, { type: 'set_total', total: 1 }, 0).events) evolve(s, e);
    const a = decide(s, { type: 'reserve', orderId: 'a', userId: 'u1', qty: 1, unitPriceCents: 100, ttl_ms: 10 }, 1);
    expect(a.reply.outcome).toBe('reserved');
    for (const e of a.events) evolve(s, e);
    const b = decide(s, { type: 'reserve', orderId: 'b', userId: 'u2', qty: 1, unitPriceCents: 100, ttl_ms: 10 }, 1);
    expect(b.reply).toEqual({ outcome: 'sold_out', available: 0 });
    expect(b.events).toEqual([]);
  });

  it('sells an order of amount 0 in the same decision as its reservation (no payment needed)', () => {
    const s = emptyInventory();
    for (const e of decide(s, { type: 'set_total', total: 3 }, 0).events) evolve(s, e);
    const free = decide(s, { type: 'reserve', orderId: 'f', userId: 'u1', qty: 2, unitPriceCents: 0, ttl_ms: 10 }, 1);
    expect(free.reply.outcome).toBe('reserved');
    expect(free.events.map((e) => e.type)).toEqual(['reserved', 'sold']);
    expect(free.events[1]).toMatchObject({ orderId: 'f', paymentId: FREE_PAYMENT_ID, qty: 2 });
    for (const e of free.events) evolve(s, e);
    expect({ reserved: s.reserved, sold: s.sold, live: s.reservations.size }).toEqual({ reserved: 0, sold: 2, live: 0 });
    // A paid order's reservation is not sold at once.
    const paid = decide(s, { type: 'reserve', orderId: 'p', userId: 'u1', qty: 1, unitPriceCents: 5, ttl_ms: 10 }, 1);
    expect(paid.events.map((e) => e.type)).toEqual(['reserved']);
  });

  it('counts card keys idempotently: the total grows by keys not counted yet, whatever is repeated', () => {
    const s = emptyInventory();
    for (const e of decide(s, { type: 'set_total', total: 5 }, 0).events) evolve(s, e);
    const apply = (keysTotal: number) => {
      const d = decide(s, { type: 'count_keys', keysTotal }, 1);
      for (const e of d.events) evolve(s, e);
      return d;
    };
    expect(apply(10).reply).toMatchObject({ outcome: 'total_set', total: 15, counted: 10 });
    // A retry of the same upload, or an older count arriving late, changes nothing (and says so).
    expect(apply(10)).toMatchObject({ events: [], reply: { counted: 0 } });
    expect(apply(7)).toMatchObject({ events: [], reply: { counted: 0 } });
    expect(apply(12).reply).toMatchObject({ outcome: 'total_set', total: 17, counted: 2 });
    expect(fromSnapshot(toSnapshot(s)).keysCounted).toBe(12);
    expect(s.total).toBe(17);
  });

  it('refuses to lower the total below what is taken, and expires only what is due', () => {
    const s = emptyInventory();
    for (const e of decide(s, { type: 'set_total', total: 5 }, 0).events) evolve(s, e);
    for (const [id, t] of [['x', 100], ['y', 200]] as const) {
      for (const e of decide(s, { type: 'reserve', orderId: id, userId: 'u', qty: 2, unitPriceCents: 1, ttl_ms: t }, 0).events) evolve(s, e);
    }
    expect(decide(s, { type: 'set_total', total: 3 }, 0).reply.outcome).toBe('invalid_state');
    const exp = decide(s, { type: 'expire_due', max_orders: 100 }, 150);
    expect(exp.events.map((e) => ('orderId' in e ? e.orderId : ''))).toEqual(['x']);
    expect(exp.reply).toEqual({ outcome: 'expired', count: 1, nextExpiresAt: 200 });
  });

  it('lets only the owner cancel, and records a refusal only when an idempotency key must replay it', () => {
    const s = emptyInventory();
    for (const e of decide(s, { type: 'set_total', total: 1 }, 0).events) evolve(s, e);
    for (const e of decide(s, { type: 'reserve', orderId: 'a', userId: 'u1', qty: 1, unitPriceCents: 1, ttl_ms: 5 }, 0).events) evolve(s, e);
    expect(decide(s, { type: 'cancel', orderId: 'a', userId: 'u2' }, 1).reply.outcome).toBe('not_reserved');
    expect(decide(s, { type: 'cancel', orderId: 'a', userId: 'u1' }, 1).reply.outcome).toBe('released');
    const refused = decide(s, { type: 'reserve', orderId: 'b', userId: 'u2', qty: 1, unitPriceCents: 1, ttl_ms: 5, idempotency: { key: 'k', hash: 'h' } }, 1);
    expect(refused.events).toHaveLength(1);
    expect(refused.events[0]!.type).toBe('refused');
  });

  it('expires a reservation whose expiry has come when a payment or a cancel meets it before the expiry pass', () => {
    const s = emptyInventory();
    for (const e of decide(s, { type: 'set_total', total: 5 }, 0).events) evolve(s, e);
    for (const [id, user] of [['paid-late', 'u1'], ['cancelled-late', 'u2'], ['paid-in-time', 'u3']] as const) {
      for (const e of decide(s, { type: 'reserve', orderId: id, userId: user, qty: 1, unitPriceCents: 100, ttl_ms: 1_000 }, 0).events) evolve(s, e);
    }
    // One millisecond before the expiry a payment is on time.
    const inTime = decide(s, { type: 'confirm_sold', orderId: 'paid-in-time', paymentId: 'p0' }, 999);
    expect(inTime.reply.outcome).toBe('sold');
    for (const e of inTime.events) evolve(s, e);
    // At the expiry, no stock is sold and nothing is cancelled: each reservation expires then.
    for (const [cmd, id] of [
      [{ type: 'confirm_sold', orderId: 'paid-late', paymentId: 'p1' }, 'paid-late'],
      [{ type: 'cancel', orderId: 'cancelled-late', userId: 'u2' }, 'cancelled-late'],
    ] as const) {
      const d = decide(s, cmd, 1_000);
      expect(d.reply).toEqual({ outcome: 'not_reserved' });
      expect(d.events).toEqual([
        { type: 'released', orderId: id, userId: id === 'paid-late' ? 'u1' : 'u2', qty: 1, amountCents: 100, createdAt: 0, expiresAt: 1_000, reason: 'expired', at: 1_000 },
      ]);
      for (const e of d.events) evolve(s, e);
    }
    expect({ reserved: s.reserved, sold: s.sold, live: s.reservations.size }).toEqual({ reserved: 0, sold: 1, live: 0 });
    // A cancel by someone else still finds nothing of theirs (and expires nothing).
    for (const e of decide(s, { type: 'reserve', orderId: 'other', userId: 'u1', qty: 1, unitPriceCents: 100, ttl_ms: 10 }, 1_000).events) evolve(s, e);
    expect(decide(s, { type: 'cancel', orderId: 'other', userId: 'u2' }, 5_000)).toEqual({ events: [], reply: { outcome: 'not_reserved' } });
  });
});

describe('journal codec', () => {
  it('decodes exactly what it encoded, for every event the ledger emits', async () => {
    const { encodeEvent, decodeEvent } = await import('../../actors/inventory-codec.ts');
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const { events } = run(steps);
        for (const e of events) {
          const wire = JSON.parse(JSON.stringify(encodeEvent(e)));
          expect(decodeEvent(wire)).toEqual(JSON.parse(JSON.stringify(e)));
        }
      }),
      { numRuns: 200 },
    );
    expect(() => decodeEvent({ type: 'reserved' })).toThrow();
    expect(() => decodeEvent(['?'])).toThrow();
    expect(() => decodeEvent(['r', 1])).toThrow();
  });
});
