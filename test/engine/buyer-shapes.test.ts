// Proves that a buyer's counted orders and no-shows share one hidden class each, however many buyers
// there are: built from an object spread they took a V8 map and descriptor array of their own per
// buyer (~290 bytes each, measured on 20,000 live limit actors), and every rule evaluation over them
// went megamorphic. Checked with V8's %HaveSameMap on 2,000 buyers, through the hold, the no-show
// and the snapshot a compaction writes and a load reads. And that the empty tombstones and no-shows
// most buyers share stay empty: a buyer's first entry goes into a map of its own.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { buyerFromSnapshot, buyerToSnapshot, emptyBuyer, evolveBuyer, type BuyerOrderFacts, type BuyerState } from '../../engine/index.ts';

setFlagsFromString('--allow-natives-syntax');
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

const T0 = Date.parse('2026-12-01T00:00:00Z');

function facts(i: number): BuyerOrderFacts {
  return { orderId: `order-${i}`, skuId: `sku-${i % 7}`, date: '2027-06-01', merchantId: 'm1', attributes: { venue: `v${i % 5}`, region: 'r1' }, qty: 1 + (i % 3), createdAt: T0 + i * 1_000 };
}

function buyers(n: number): BuyerState[] {
  return Array.from({ length: n }, (_, i) => {
    const s = emptyBuyer();
    evolveBuyer(s, { type: 'held', order: facts(i), at: T0 + i });
    evolveBuyer(s, { type: 'no_show_recorded', noShow: { ...facts(n + i), at: T0 + i }, at: T0 + i });
    return s;
  });
}

function distinctMaps(objects: object[]): number {
  return objects.filter((o) => !haveSameMap(o, objects[0]!)).length;
}

describe('buyer state objects', () => {
  it('share one hidden class per kind across 2,000 buyers', () => {
    const states = buyers(2_000);
    const orders = states.map((s) => [...s.orders.values()][0]!);
    const noShows = states.map((s) => [...s.noShows.values()][0]!);
    expect(orders.every((o) => o.status === 'held')).toBe(true);
    expect(distinctMaps(orders)).toBe(0);
    expect(distinctMaps(noShows)).toBe(0);
  });

  it('keep it when loaded from a snapshot', () => {
    const loaded = buyers(2_000).map((s) => buyerFromSnapshot(JSON.parse(JSON.stringify(buyerToSnapshot(s)))));
    const orders = loaded.map((s) => [...s.orders.values()][0]!);
    expect(orders[1_999]).toEqual({ ...facts(1_999), status: 'held' });
    expect(distinctMaps(orders)).toBe(0);
    expect(distinctMaps(loaded.map((s) => [...s.noShows.values()][0]!))).toBe(0);
  });

  it('give a buyer its own tombstones and no-shows at its first one, leaving every other buyer empty', () => {
    const [a, b] = [emptyBuyer(), emptyBuyer()];
    evolveBuyer(a, { type: 'held', order: facts(1), at: T0 });
    evolveBuyer(a, { type: 'released', orderId: 'order-1', reason: 'cancelled', at: T0 + 1 });
    evolveBuyer(a, { type: 'no_show_recorded', noShow: { ...facts(2), at: T0 + 2 }, at: T0 + 2 });
    expect([...a.released.keys()]).toEqual(['order-1']);
    expect([...a.noShows.keys()]).toEqual(['order-2']);
    expect(b.released.size).toBe(0);
    expect(b.noShows.size).toBe(0);
    expect(emptyBuyer().released.size + emptyBuyer().noShows.size).toBe(0);
    // A buyer loaded without any keeps none; a prune of a buyer without any writes nothing.
    const loaded = buyerFromSnapshot(JSON.parse(JSON.stringify(buyerToSnapshot(b))));
    evolveBuyer(loaded, { type: 'pruned', ordersBefore_ms: T0, noShowsBefore_ms: T0, acceptFrom_ms: T0, at: T0 });
    evolveBuyer(loaded, { type: 'released', orderId: 'order-9', reason: 'expired', at: T0 + 3 });
    expect([...loaded.released.keys()]).toEqual(['order-9']);
    expect(emptyBuyer().released.size).toBe(0);
  });
});
