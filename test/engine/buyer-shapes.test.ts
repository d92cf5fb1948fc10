// Proves that a buyer's counted orders and no-shows share one hidden class each, however many buyers
// there are: built from an object spread they took a V8 map and descriptor array of their own per
// buyer (~290 bytes each, measured on 20,000 live limit actors), and every rule evaluation over them
// went megamorphic. Checked with V8's %HaveSameMap on 2,000 buyers, through the hold, the no-show
// and the snapshot a compaction writes and a load reads.
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
});
