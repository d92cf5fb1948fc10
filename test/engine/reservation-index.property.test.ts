// Proves the columnar reservation index behaves exactly like one insertion-ordered Map of
// reservations, whatever the sequence of adds, replacements, removals and in-place rewrites (fast-check
// runs both side by side, through the index's incremental growth and shrinking, released chunks and
// row renumbering), and that an operator's pages of ids answer what a sorted copy answers however rows
// come and go between pages (its bytes per reservation are measured by bench/reservation-index-memory.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReservationIndex, seededFloats, type Reservation } from '../../engine/index.ts';

/** A reservation in the form the index gives back (`limited` only when true). */
function reservation(orderId: string, userId: string, n: number, limited: boolean): Reservation {
  const r: Reservation = { orderId, userId, qty: 1 + (n % 100), amountCents: n * 1999, createdAt: 1.7e12 + n, expiresAt: 1.7e12 + n + 900_000 };
  if (limited) r.limited = true;
  return r;
}

// Ids and user ids include characters above U+00FF and astral ones (stored two bytes per code unit).
const idOf = (i: number): string => (i % 7 === 3 ? `ø-${i}-✓` : i % 11 === 5 ? `𝄞${i}` : `01JD${i}-1a`);
const userOf = (n: number): string => (n % 5 === 0 ? `用户${n}` : n % 13 === 0 ? '' : `u${n}`);

function expectSame(index: ReservationIndex, model: Map<string, Reservation>, probes: Iterable<string>): void {
  expect(index.size).toBe(model.size);
  expect([...index.values()]).toEqual([...model.values()]);
  for (const id of probes) {
    expect(index.has(id)).toBe(model.has(id));
    expect(index.get(id)).toEqual(model.get(id));
  }
}

/** An empty slot's value in the hash index. */
const EMPTY_SLOT = 0;

describe('reservation index', () => {
  // Small indexes too have their successor made ahead with prepare_slots_min 16 (a large one's is from
  // 65,536 slots), in memory full of what looks like rows (freed memory reused holds anything): growths
  // that come before all of it was cleared, and of a size other than prepared (after deletes), are
  // exercised on every run, and the index is checked whole after every operation (the garbage has an
  // empty slot in every other one, so that an index left holding it fails that check instead of
  // probing for ever for an empty slot).
  const garbage = (length: number) => new Int32Array(length).map((_, i) => (i % 4 === 0 ? EMPTY_SLOT : 1 + ((i * 7919) % 5000)));
  it.each([
    ['as made', {}, false, 3000],
    ['small indexes prepared in garbage', { prepare_slots_min: 16, unzeroed: garbage }, true, 300],
  ])('matches a Map for get, has, size and arrival order under any adds, replacements and deletes (%s)', (_, options, check, ids) => {
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 0, max: ids }), limited: fc.boolean() }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: ids }) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: (4 * ids) / 3, size: 'max' }), (ops) => {
        const model = new Map<string, Reservation>();
        const index = new ReservationIndex(options);
        ops.forEach((o, n) => {
          const id = idOf(o.id);
          if (o.kind === 'set') {
            const r = reservation(id, userOf(n), n, o.limited);
            model.set(id, r);
            index.set(id, r);
          } else {
            expect(index.delete(id)).toBe(model.delete(id));
          }
          expect(index.size).toBe(model.size);
          if (check) index.checkIntegrity();
        });
        index.checkIntegrity();
        expectSame(index, model, Array.from({ length: 32 }, (_, k) => idOf(k * 97)));
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
        const model = new Map<string, Reservation>();
        const index = new ReservationIndex();
        ops.forEach((o, n) => {
          if (o.kind === 'replaceEach') {
            // Mark limited (and move the expiry of) the entries whose qty is divisible by `mod`.
            const replace = (r: Reservation): Reservation | undefined =>
              r.qty % o.mod === 0 && !r.limited ? { ...r, userId: `${r.userId}+`, expiresAt: r.expiresAt + n, limited: true } : undefined;
            let expected = 0;
            for (const [id, r] of model) {
              const next = replace(r);
              if (next) (model.set(id, next), expected++);
            }
            expect(index.replaceEach(replace)).toBe(expected);
          } else if (o.kind === 'set') {
            const id = idOf(o.id);
            const r = reservation(id, userOf(n), n, false);
            model.set(id, r);
            index.set(id, r);
          } else {
            expect(index.delete(idOf(o.id))).toBe(model.delete(idOf(o.id)));
          }
          expect(index.size).toBe(model.size);
        });
        expectSame(index, model, model.keys());
      }),
      { numRuns: 100 },
    );
  });

  it('renumbers its rows when row ids run out, keeping every reservation and the arrival order', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 40 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
        const model = new Map<string, Reservation>();
        const index = new ReservationIndex({ row_id_max: 100 });
        ops.forEach((o, n) => {
          const id = idOf(o.id);
          if (o.kind === 'set') {
            const r = reservation(id, userOf(n), n, n % 2 === 0);
            model.set(id, r);
            index.set(id, r);
          } else expect(index.delete(id)).toBe(model.delete(id));
        });
        expectSame(index, model, Array.from({ length: 41 }, (_, i) => idOf(i)));
      }),
      { numRuns: 100 },
    );
  });

  it('due, earliestExpiresAt, latestCreatedAt and after answer what a walk over every reservation answers', () => {
    // The walks the engine made over values() before these column scans existed.
    const dueByWalk = (index: ReservationIndex, now: number, max: number, inOrder: boolean) => {
      const due: Reservation[] = [];
      let nextExpiresAt: number | undefined;
      for (const r of index.values()) {
        if (r.expiresAt <= now) {
          if (due.length >= max) {
            nextExpiresAt = now;
            break;
          }
          due.push(r);
        } else {
          nextExpiresAt = nextExpiresAt === undefined ? r.expiresAt : Math.min(nextExpiresAt, r.expiresAt);
          if (inOrder) break;
        }
      }
      return { due, nextExpiresAt };
    };
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 0, max: 400 }), expires: fc.integer({ min: 0, max: 1000 }), created: fc.integer({ min: -1000, max: 1000 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 400 }) }) },
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 800 }),
        fc.integer({ min: -10, max: 1010 }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: -5, max: 405 }),
        fc.integer({ min: 0, max: 60 }),
        (ops, now, max, after, limit) => {
          const index = new ReservationIndex();
          ops.forEach((o, n) => {
            const id = idOf(o.id);
            if (o.kind === 'set') index.set(id, { ...reservation(id, userOf(n), n, false), expiresAt: o.expires, createdAt: o.created });
            else index.delete(id);
          });
          for (const inOrder of [true, false]) {
            expect(index.due(now, max, inOrder)).toEqual(dueByWalk(index, now, max, inOrder));
            const all = [...index.values()];
            const earliest = inOrder ? all[0]?.expiresAt : all.length ? Math.min(...all.map((r) => r.expiresAt)) : undefined;
            expect(index.earliestExpiresAt(inOrder)).toBe(earliest);
          }
          const created = [...index.values()].map((r) => r.createdAt);
          expect(index.latestCreatedAt()).toBe(created.length ? Math.max(...created) : undefined);
          const cursor = after < 0 ? '' : idOf(after);
          const expected = [...index.values()].filter((r) => r.orderId > cursor).sort((a, b) => (a.orderId < b.orderId ? -1 : 1)).slice(0, limit);
          expect(index.after(cursor, limit)).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('after pages through thousands of nearly id-ordered reservations as a sorted copy does, rows added and deleted between pages', () => {
    // Order ids grow with time, a few out of order (same millisecond, a hold landing late): ids here
    // are a counter plus a jitter, some of them wide (stored two bytes per character), so chunks hold
    // narrow, overlapping ranges of ids that pages skip on their bounds or read.
    const idAt = (key: number, n: number): string => {
      const base = key.toString().padStart(9, '0');
      return n % 7 === 3 ? `${base}-ø✓` : n % 11 === 5 ? `${base}𝄞` : `${base}-1a`;
    };
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('add' as const), n: fc.integer({ min: 1, max: 1500 }), spread: fc.integer({ min: 0, max: 3000 }), seed: fc.integer() }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), mod: fc.integer({ min: 1, max: 6 }), rem: fc.integer({ min: 0, max: 5 }), upTo: fc.double({ min: 0, max: 1, noNaN: true }) }) },
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('page' as const), limit: fc.integer({ min: 1, max: 700 }) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const model = new Map<string, Reservation>();
        const index = new ReservationIndex();
        let key = 0;
        let cursor = '';
        let made = 0;
        for (const o of ops) {
          if (o.kind === 'add') {
            const jitter = seededFloats(o.seed);
            for (let j = 0; j < o.n; j++) {
              // An id may repeat a live one: set replaces it in place, as Map.set does.
              const id = idAt(Math.max(0, key + Math.floor((jitter() - 0.5) * o.spread)), made);
              const r = reservation(id, userOf(made), made, made % 4 === 0);
              model.set(id, r);
              index.set(id, r);
              key += 4;
              made++;
            }
          } else if (o.kind === 'delete') {
            // Some of the oldest (`upTo` of them, in arrival order), as payments and expiries settle them.
            const ids = [...model.keys()];
            ids.slice(0, Math.ceil(ids.length * o.upTo)).forEach((id, n) => {
              if (n % o.mod === o.rem % o.mod) expect(index.delete(id)).toBe(model.delete(id));
            });
          } else {
            const expected = [...model.values()]
              .filter((r) => r.orderId > cursor)
              .sort((a, b) => (a.orderId < b.orderId ? -1 : 1))
              .slice(0, o.limit);
            expect(index.after(cursor, o.limit)).toEqual(expected);
            // The next page continues after this one's last id; after the last page, from the start.
            cursor = expected.length ? expected[expected.length - 1]!.orderId : '';
          }
          expect(index.size).toBe(model.size);
        }
      }),
      { numRuns: 120 },
    );
  });

  it('grows to and shrinks from 100,000 reservations, keeping arrival order as released chunks go', () => {
    const index = new ReservationIndex();
    const model = new Map<string, Reservation>();
    const N = 100_000;
    for (let i = 0; i < N; i++) {
      const r = reservation(idOf(i), userOf(i), i, i % 3 === 0);
      index.set(r.orderId, r);
      model.set(r.orderId, r);
    }
    expectSame(index, model, Array.from({ length: 200 }, (_, k) => idOf(k * 499)));
    // Everything but every 1000th, oldest first: whole chunks released, the head dropped.
    for (let i = 0; i < N; i++) {
      if (i % 1000 === 999) continue;
      expect(index.delete(idOf(i))).toBe(true);
      model.delete(idOf(i));
    }
    expectSame(index, model, Array.from({ length: 200 }, (_, k) => idOf(k * 499 + 999)));
    for (let i = N; i < N + 5_000; i++) {
      const r = reservation(idOf(i), userOf(i), i, false);
      index.set(r.orderId, r);
      model.set(r.orderId, r);
    }
    expectSame(index, model, model.keys());
    for (const id of [...model.keys()]) (index.delete(id), model.delete(id));
    expectSame(index, model, [idOf(0), idOf(N)]);
  });
});
