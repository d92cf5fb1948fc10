// Proves the bucketed reservation index behaves exactly like one insertion-ordered Map, whatever the
// sequence of adds and removals: fast-check runs both side by side.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReservationIndex } from '../../engine/index.ts';

describe('reservation index', () => {
  it('matches a Map for get, has, size and arrival order under any adds and deletes', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 0, max: 3000 }) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 3000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 4000 }), (ops) => {
        const model = new Map<string, { orderId: string; v: number }>();
        const index = new ReservationIndex<{ orderId: string; v: number }>();
        ops.forEach((o, n) => {
          const id = `o${o.id}`;
          if (o.kind === 'set') {
            const r = { orderId: id, v: n };
            model.set(id, r);
            index.set(id, r);
          } else {
            expect(index.delete(id)).toBe(model.delete(id));
          }
          expect(index.size).toBe(model.size);
        });
        expect([...index.values()]).toEqual([...model.values()]);
        for (let i = 0; i <= 3000; i += 97) expect(index.get(`o${i}`)).toBe(model.get(`o${i}`));
      }),
      { numRuns: 60 },
    );
  });

  it('replaceEach replaces exactly the live entries it is asked to, in place, like Map.set of each', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 0, max: 500 }) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 500 }) }),
      fc.record({ kind: fc.constant('replaceEach' as const), mod: fc.integer({ min: 1, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 1500 }), (ops) => {
        const model = new Map<string, { orderId: string; v: number }>();
        const index = new ReservationIndex<{ orderId: string; v: number }>();
        ops.forEach((o, n) => {
          if (o.kind === 'replaceEach') {
            // Replace the entries whose value is divisible by `mod`; the model does it entry by entry.
            let expected = 0;
            for (const [id, r] of model) if (r.v % o.mod === 0) (model.set(id, { orderId: id, v: n + 10_000 }), expected++);
            expect(index.replaceEach((r) => (r.v % o.mod === 0 ? { orderId: r.orderId, v: n + 10_000 } : undefined))).toBe(expected);
          } else if (o.kind === 'set') {
            const id = `o${o.id}`;
            const r = { orderId: id, v: n };
            model.set(id, r);
            index.set(id, r);
          } else {
            expect(index.delete(`o${o.id}`)).toBe(model.delete(`o${o.id}`));
          }
          expect(index.size).toBe(model.size);
        });
        expect([...index.values()]).toEqual([...model.values()]);
        for (const [id, r] of model) expect(index.get(id)).toEqual(r);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps arrival order across compaction of a long queue', () => {
    const index = new ReservationIndex<{ orderId: string }>();
    for (let i = 0; i < 10_000; i++) index.set(`o${i}`, { orderId: `o${i}` });
    for (let i = 0; i < 10_000; i += 3) index.delete(`o${i}`);
    for (let i = 0; i < 9_000; i++) if (i % 3 !== 0) index.delete(`o${i}`);
    expect([...index.values()].map((r) => r.orderId)).toEqual(
      Array.from({ length: 1_000 }, (_, k) => 9_000 + k).filter((i) => i % 3 !== 0).map((i) => `o${i}`),
    );
  });
});
