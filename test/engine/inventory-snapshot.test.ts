// Proves that a stored inventory snapshot is taken only in the format toSnapshot writes: one of another
// format (a newer engine's, after a downgrade), or with a count missing, out of range or inconsistent,
// is refused (InvalidSnapshotError) instead of becoming a ledger whose arithmetic is NaN; a snapshot
// written before formats were numbered is still read.
import { describe, expect, it } from 'vitest';
import { decide, emptyInventory, evolve, fromSnapshot, INVENTORY_SNAPSHOT_FORMAT, InvalidSnapshotError, toSnapshot, type InventoryState } from '../../engine/index.ts';

function ledger(): InventoryState {
  const state = emptyInventory();
  for (const command of [
    { type: 'set_total', total: 10 },
    { type: 'reserve', orderId: 'o1', userId: 'u1', qty: 2, unitPriceCents: 100, ttl_ms: 60_000 },
    { type: 'reserve', orderId: 'o2', userId: 'u2', qty: 1, unitPriceCents: 100, ttl_ms: 60_000, limited: true },
  ] as const) {
    for (const event of decide(state, command as never, 1_000).events) evolve(state, event);
  }
  return state;
}

describe('an inventory snapshot', () => {
  it('is written with its format and read back to the same ledger; one without a format is format 1', () => {
    const snapshot = JSON.parse(JSON.stringify(toSnapshot(ledger())));
    expect(snapshot.format).toBe(INVENTORY_SNAPSHOT_FORMAT);
    expect(toSnapshot(fromSnapshot(snapshot))).toEqual(snapshot);
    const { format: _format, ...legacy } = snapshot;
    const read = fromSnapshot(legacy);
    expect([read.total, read.reserved, read.sold, read.reservations.size]).toEqual([10, 3, 0, 2]);
  });

  it('is refused in another format, or with a field missing, out of range or inconsistent', () => {
    const good = JSON.parse(JSON.stringify(toSnapshot(ledger())));
    const variants: [string, unknown][] = [
      ['format 2', { ...good, format: 2 }],
      ['not an object', [good]],
      ['null', null],
      ['sold missing', { ...good, sold: undefined }],
      ['total a string', { ...good, total: '10' }],
      ['negative sold', { ...good, sold: -1 }],
      ['fractional reserved', { ...good, reserved: 2.5 }],
      ['more taken than total', { ...good, total: 2 }],
      ['reservations not a list', { ...good, reservations: {} }],
      ['reserved not the sum', { ...good, reserved: 4 }],
      ['a reservation without its buyer', { ...good, reservations: [{ ...good.reservations[0], userId: undefined }, good.reservations[1]] }],
      ['a reservation of no units', { ...good, reserved: 1, reservations: [{ ...good.reservations[0], qty: 0 }, good.reservations[1]] }],
      ['a reservation twice', { ...good, reserved: 4, reservations: [good.reservations[0], good.reservations[0]] }],
      ['keysCounted negative', { ...good, keysCounted: -3 }],
    ];
    for (const [what, stored] of variants) expect(() => fromSnapshot(stored), what).toThrow(InvalidSnapshotError);
  });
});
