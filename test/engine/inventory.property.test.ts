// Proves the inventory ledger can never oversell or go negative, and that replaying its events
// rebuilds the same state: fast-check drives random command sequences through decide/evolve.
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
  type InventoryState,
  FREE_PAYMENT_ID,
} from '../../engine/index.ts';

const orderIds = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'o8'];
const users = ['alice', 'bob'];

const command: fc.Arbitrary<InventoryCommand> = fc.oneof(
  fc.record({
    type: fc.constant('reserve' as const),
    orderId: fc.constantFrom(...orderIds),
    userId: fc.constantFrom(...users),
    qty: fc.integer({ min: -2, max: 120 }),
    unitPriceCents: fc.integer({ min: 0, max: 5000 }),
    ttl_ms: fc.integer({ min: 0, max: 10_000 }),
  }),
  fc.record({ type: fc.constant('cancel' as const), orderId: fc.constantFrom(...orderIds), userId: fc.constantFrom(...users) }),
  fc.record({ type: fc.constant('expire_due' as const), max_orders: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ type: fc.constant('confirm_sold' as const), orderId: fc.constantFrom(...orderIds), paymentId: fc.constantFrom('p1', 'p2') }),
  fc.record({ type: fc.constant('set_total' as const), total: fc.integer({ min: -5, max: 300 }) }),
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

function run(steps: [InventoryCommand, number][]): { state: InventoryState; events: InventoryEvent[] } {
  const state = emptyInventory();
  const events: InventoryEvent[] = [];
  let now = 1_000_000;
  for (const [cmd, dt] of steps) {
    now += dt;
    const before = JSON.stringify(toSnapshot(state));
    const d = decide(state, cmd, now);
    expect(JSON.stringify(toSnapshot(state))).toBe(before); // decide never changes the state
    for (const e of d.events) evolve(state, e);
    events.push(...d.events);
    checkInvariants(state);
  }
  return { state, events };
}

describe('inventory ledger', () => {
  it('never yields reserved + sold > total or a negative count, whatever the commands', () => {
    fc.assert(fc.property(fc.array(step, { maxLength: 80 }), (steps) => void run(steps)), { numRuns: 500 });
  });

  it('rebuilds the same state by replaying the emitted events, and through a snapshot', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), fc.nat(), (steps, cut) => {
        const { state, events } = run(steps);
        const replayed = emptyInventory();
        for (const e of events) evolve(replayed, e);
        expect(toSnapshot(replayed)).toEqual(toSnapshot(state));
        // Snapshot at any point, then the rest of the events: same state.
        const k = events.length === 0 ? 0 : cut % (events.length + 1);
        const head = emptyInventory();
        for (const e of events.slice(0, k)) evolve(head, e);
        const resumed = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(head))));
        for (const e of events.slice(k)) evolve(resumed, e);
        expect(toSnapshot(resumed)).toEqual(toSnapshot(state));
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
