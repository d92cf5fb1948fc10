// Proves the bounded map of recent entries against a plain model: random sets, reads, peeks (reads that
// are not a use) and deletes on a few keys and small bounds; after every step it never holds more than
// its bound, never answers a value other than the last one set, never keeps a deleted key, and keeps
// every one of the ceil(max / 2) keys used last that was not deleted since. And that it never iterates a Map: the walk
// over deleted slots it exists to avoid (engine/recent-map.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecentMap } from '../../engine/recent-map.ts';
import { mapIterations } from '../support/map-iterations.ts';

type Op = { op: 'set'; key: number; value: number } | { op: 'get'; key: number } | { op: 'peek'; key: number } | { op: 'delete'; key: number };

const KEYS = 12;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), key: fc.nat(KEYS - 1), value: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('get' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('peek' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.nat(KEYS - 1) }) },
);

/** The keys set or read last (distinct, most recent first), at most n of them. */
function lastUsed(uses: number[], n: number): number[] {
  const seen = new Set<number>();
  for (let i = uses.length - 1; i >= 0 && seen.size < n; i--) seen.add(uses[i]!);
  return [...seen];
}

describe('RecentMap', () => {
  it('stays within its bound and keeps the keys used last, as a plain model says', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.array(opArb, { maxLength: 300 }), (max, ops) => {
        const map = new RecentMap<number, number>(max);
        const model = new Map<number, number>();
        const uses: number[] = [];
        for (const o of ops) {
          if (o.op === 'set') {
            map.set(o.key, o.value);
            model.set(o.key, o.value);
            uses.push(o.key);
          } else if (o.op === 'get') {
            const got = map.get(o.key);
            if (got !== undefined) {
              expect(got).toBe(model.get(o.key));
              uses.push(o.key);
            }
          } else if (o.op === 'peek') {
            // Not a use: the model's recency does not move.
            const got = map.peek(o.key);
            if (got !== undefined) expect(got).toBe(model.get(o.key));
            expect(got !== undefined).toBe(map.has(o.key));
          } else {
            map.delete(o.key);
            model.delete(o.key);
          }
          expect(map.size).toBeLessThanOrEqual(max);
          let kept = 0;
          for (let k = 0; k < KEYS; k++) {
            if (map.has(k)) {
              kept++;
              expect(model.has(k)).toBe(true);
            }
          }
          expect(map.size).toBe(kept);
          for (const k of lastUsed(uses, Math.ceil(max / 2))) if (model.has(k)) expect(map.has(k)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a key whose value is undefined is kept and read as such', () => {
    const map = new RecentMap<string, undefined>(4);
    map.set('a', undefined);
    expect(map.has('a')).toBe(true);
    expect(map.get('a')).toBeUndefined();
    expect(map.size).toBe(1);
  });

  it('refuses a bound that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => new RecentMap(bad)).toThrow(RangeError);
  });

  describe('past its bound, no operation iterates a Map', () => {
    const iterations = mapIterations();

    it('100,000 sets, reads and deletes on a map of 1,000 walk nothing', () => {
      const map = new RecentMap<string, number>(1_000);
      const walked = iterations.count();
      for (let i = 0; i < 100_000; i++) {
        map.set(`k${i}`, i);
        map.get(`k${i - 700}`);
        map.peek(`k${i - 900}`);
        if (i % 3 === 0) map.delete(`k${i - 300}`);
      }
      expect(walked.n).toBe(0);
      expect(map.size).toBeLessThanOrEqual(1_000);
      expect(map.get('k99999')).toBe(99_999);
    });
  });
});
