// Proves a compaction's `restored` snapshot writes each distinct set of an order's facts once (a buyer
// with 1,000 orders of one SKU with 32 attributes of 256 characters made a record of 8.3 MiB when every
// order repeated them), that a buyer at every per-buyer bound fits BUYER_SNAPSHOT_BYTES_MAX while one
// past it gets no `restored` event at all (snapshot_too_large), and that both formats — the compact one
// and the plain one of the journals written before it — load to the same state, through JSON as the
// journal stores them.
import { describe, expect, it } from 'vitest';
import {
  BUYER_NO_SHOWS_MAX,
  BUYER_ORDERS_MAX,
  BUYER_SNAPSHOT_BYTES_MAX,
  BUYER_SNAPSHOT_FORMAT,
  BUYER_TOMBSTONES_MAX,
  buyerFromSnapshot,
  buyerToCompactSnapshot,
  buyerToSnapshot,
  DAY_MS,
  decideBuyer,
  emptyBuyer,
  evolveBuyer,
  type BuyerEvent,
  type BuyerOrderFacts,
  type BuyerState,
} from '../../engine/index.ts';

const T0 = Date.parse('2027-03-01T00:00:00Z');

/** 32 attributes of 256 characters: the most a SKU may have that a rule can match on. */
const bigAttributes = (sku: string) => Object.fromEntries(Array.from({ length: 32 }, (_, k) => [`attr${k}`, `${sku}-${k}-`.padEnd(256, 'x')]));

function order(i: number, skuId: string, attributes: Record<string, string>): BuyerOrderFacts {
  return { orderId: `order-${String(i).padStart(6, '0')}`, skuId, date: '2027-06-01', merchantId: 'm1', attributes, qty: 1 + (i % 3), createdAt: T0 + i * 60_000 };
}

/** A buyer with `n` orders of one big SKU (every third paid), a few tombstones and no-shows. */
function buyer(n: number): BuyerState {
  const s = emptyBuyer();
  const attributes = bigAttributes('festival');
  for (let i = 0; i < n; i++) {
    evolveBuyer(s, { type: 'held', order: order(i, 'festival', { ...attributes }), at: T0 + i });
    if (i % 3 === 0) evolveBuyer(s, { type: 'confirmed', orderId: order(i, 'festival', attributes).orderId, at: T0 + i });
  }
  for (let i = 0; i < 5; i++) {
    evolveBuyer(s, { type: 'released', orderId: `gone-${i}`, reason: 'cancelled', at: T0 + i });
    evolveBuyer(s, { type: 'no_show_recorded', noShow: { ...order(n + i, i % 2 ? 'festival' : 'museum', i % 2 ? attributes : bigAttributes('museum')), at: T0 + DAY_MS }, at: T0 + DAY_MS });
  }
  s.acceptFrom_ms = T0 - 1;
  return s;
}

const throughJson = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('buyer snapshots', () => {
  it('write each distinct set of facts once: 1,000 orders of a SKU with 32×256-character attributes compact to a small record', () => {
    const s = buyer(1_000);
    const [event] = decideBuyer(s, { type: 'compact' }, T0 + 2 * DAY_MS).events as [BuyerEvent & { type: 'restored' }];
    expect(event.snapshot).toMatchObject({ format: BUYER_SNAPSHOT_FORMAT });
    const bytes = Buffer.byteLength(JSON.stringify([event]));
    // The plain format repeats the attributes in every order: over 8 MiB for this buyer.
    expect(Buffer.byteLength(JSON.stringify(buyerToSnapshot(s)))).toBeGreaterThan(8 * 1024 * 1024);
    // Compact: two sets of facts (~8 KiB each) and ~50 bytes an order.
    expect(bytes).toBeLessThan(100 * 1024);
  });

  it('fit a buyer at every per-buyer bound (10,000 orders, tombstones and no-shows with 8 attributes of 40 characters: 11.6 MiB in the plain format) under BUYER_SNAPSHOT_BYTES_MAX', () => {
    const s = emptyBuyer();
    const attributesOf = (sku: number) => Object.fromEntries(Array.from({ length: 8 }, (_, k) => [`attribute-${k}`, `sku-${sku}-${k}`.padEnd(40, '.')]));
    const ids = (prefix: string, i: number) => `01JD${String(i).padStart(22, '0')}-${prefix}`;
    for (let i = 0; i < BUYER_ORDERS_MAX; i++) {
      const orderId = ids('o', i);
      evolveBuyer(s, { type: 'held', order: { ...order(i, `sku-${i % 20}`, attributesOf(i % 20)), orderId }, at: T0 + i });
      evolveBuyer(s, { type: 'confirmed', orderId, at: T0 + i });
    }
    for (let i = 0; i < BUYER_TOMBSTONES_MAX; i++) evolveBuyer(s, { type: 'released', orderId: ids('r', i), reason: 'cancelled', at: T0 + i });
    for (let i = 0; i < BUYER_NO_SHOWS_MAX; i++) {
      evolveBuyer(s, { type: 'no_show_recorded', noShow: { ...order(i, `sku-${i % 20}`, attributesOf(i % 20)), orderId: ids('n', i), at: T0 + DAY_MS + i }, at: T0 + DAY_MS + i });
    }
    expect(Buffer.byteLength(JSON.stringify(buyerToSnapshot(s)))).toBeGreaterThan(11 * 1024 * 1024);
    const d = decideBuyer(s, { type: 'compact' }, T0 + 2 * DAY_MS);
    expect(d.reply).toEqual({ outcome: 'compacted', bytes: Buffer.byteLength(JSON.stringify((d.events[0] as BuyerEvent & { type: 'restored' }).snapshot)) });
    expect(Buffer.byteLength(JSON.stringify(d.events))).toBeLessThan(BUYER_SNAPSHOT_BYTES_MAX / 1.5);
  });

  it('are not written past BUYER_SNAPSHOT_BYTES_MAX: a buyer of 700 distinct SKUs with 32×256-character attributes gets no `restored` event', () => {
    const s = emptyBuyer();
    for (let i = 0; i < 700; i++) evolveBuyer(s, { type: 'held', order: order(i, `sku-${i}`, bigAttributes(`sku-${i}`)), at: T0 + i });
    const bytes = Buffer.byteLength(JSON.stringify(buyerToCompactSnapshot(s)));
    expect(bytes).toBeGreaterThan(BUYER_SNAPSHOT_BYTES_MAX);
    expect(decideBuyer(s, { type: 'compact' }, T0 + DAY_MS)).toEqual({ events: [], reply: { outcome: 'snapshot_too_large', bytes, max: BUYER_SNAPSHOT_BYTES_MAX } });
    // Non-ASCII text counts in UTF-8 bytes, as the journal stores it (2 and 4 bytes a character here).
    const wide = emptyBuyer();
    for (let i = 0; i < 2_300; i++) evolveBuyer(wide, { type: 'held', order: order(i, `w-${i}`, { name: `${i}`.padEnd(400, 'é') + '🎟'.repeat(300) }), at: T0 + i });
    const wideBytes = Buffer.byteLength(JSON.stringify(buyerToCompactSnapshot(wide)));
    expect(JSON.stringify(buyerToCompactSnapshot(wide)).length).toBeLessThan(BUYER_SNAPSHOT_BYTES_MAX);
    expect(wideBytes).toBeGreaterThan(BUYER_SNAPSHOT_BYTES_MAX);
    expect(decideBuyer(wide, { type: 'compact' }, T0 + DAY_MS).reply).toEqual({ outcome: 'snapshot_too_large', bytes: wideBytes, max: BUYER_SNAPSHOT_BYTES_MAX });
  });

  it('write a SKU\'s attributes once for all its dates: 600 dates of one SKU with 32×256-character attributes stay far below the bound', () => {
    const s = emptyBuyer();
    const attributes = bigAttributes('festival');
    for (let i = 0; i < 600; i++) {
      const date = new Date(Date.UTC(2027, 0, 1) + i * DAY_MS).toISOString().slice(0, 10);
      evolveBuyer(s, { type: 'held', order: { ...order(i, 'festival', { ...attributes }), date }, at: T0 + i });
    }
    const compact = buyerToCompactSnapshot(s);
    expect([compact.attributes.length, compact.facts.length]).toEqual([1, 600]);
    expect(Buffer.byteLength(JSON.stringify(compact))).toBeLessThan(100 * 1024);
    expect(buyerToSnapshot(buyerFromSnapshot(throughJson(compact)))).toEqual(buyerToSnapshot(s));
  });

  it('load to the same state from either format, through JSON: the compact one and the plain one older journals hold', () => {
    const s = buyer(300);
    const compact = buyerFromSnapshot(throughJson(buyerToCompactSnapshot(s)));
    const plain = buyerFromSnapshot(throughJson(buyerToSnapshot(s)));
    expect(buyerToSnapshot(compact)).toEqual(buyerToSnapshot(s));
    expect(buyerToSnapshot(plain)).toEqual(buyerToSnapshot(s));
    expect(compact.ledger?.ids).toEqual(s.ledger?.ids);
    // As `restored` events replayed over whatever came before (a load of a compacted journal).
    for (const snapshot of [buyerToCompactSnapshot(s), buyerToSnapshot(s)]) {
      const replayed = buyer(3);
      evolveBuyer(replayed, throughJson({ type: 'restored', snapshot, at: T0 + 2 * DAY_MS }) as BuyerEvent);
      expect(buyerToSnapshot(replayed)).toEqual(buyerToSnapshot(s));
    }
    // An empty buyer, and -Infinity bounds, both ways.
    expect(buyerToSnapshot(buyerFromSnapshot(throughJson(buyerToCompactSnapshot(emptyBuyer()))))).toEqual(buyerToSnapshot(emptyBuyer()));
  });

  it('refuses a compact snapshot it cannot read (an unknown format, a facts index out of range) instead of loading garbage', () => {
    const snapshot = buyerToCompactSnapshot(buyer(4));
    expect(() => buyerFromSnapshot({ ...snapshot, format: 3 as typeof BUYER_SNAPSHOT_FORMAT })).toThrow(RangeError);
    expect(() => buyerFromSnapshot({ ...snapshot, orders: [['o', 99, 1, T0, 0]] })).toThrow(/refers to facts 99/);
  });
});
