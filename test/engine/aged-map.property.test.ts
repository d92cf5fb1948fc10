// Proves the map of entries that count for a while (engine/aged-map.ts) against a plain model: random
// sets, reads and deletes on a few keys, with the clock moving by random steps (some past twice the
// age at once), with generations as long as the age or half of it; after every step a read answers
// what the model says (the last value set and not deleted since: always while set less than a
// generation before, never once set an age before), and the map holds no entry set three generations
// or more before the last call (two with a call at least every generation: the dense test below), and
// the sum of the bytes its entries were set with. And that it never iterates a Map: the walk over deleted slots it exists to avoid.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgedMap } from '../../engine/aged-map.ts';
import { mapIterations } from '../support/map-iterations.ts';

type Op = { op: 'set'; key: number; value: number } | { op: 'get'; key: number } | { op: 'delete'; key: number } | { op: 'tick'; ms: number };

const KEYS = 8;
const AGE = 10;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), key: fc.nat(KEYS - 1), value: fc.integer() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('get' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 3 * AGE })) }) },
);

describe('AgedMap', () => {
  it('answers each key as a plain model of set times says, and lets old generations go', () => {
    fc.assert(
      fc.property(fc.constantFrom(AGE, AGE / 2), fc.array(opArb, { maxLength: 300 }), (generation, ops) => {
        const map = new AgedMap<number, number>(AGE, generation);
        const model = new Map<number, { value: number; at: number }>();
        let now = 1_000;
        for (const o of ops) {
          if (o.op === 'tick') {
            now += o.ms;
            continue;
          }
          if (o.op === 'set') {
            map.set(o.key, o.value, now);
            model.set(o.key, { value: o.value, at: now });
          } else if (o.op === 'delete') {
            map.delete(o.key);
            model.delete(o.key);
          }
          for (let k = 0; k < KEYS; k++) {
            const m = model.get(k);
            const got = map.get(k, now);
            // Held at least a generation after it was set; counted only while younger than the age.
            if (m !== undefined && now - m.at < generation) expect(got).toBe(m.value);
            else if (m !== undefined && now - m.at < AGE) expect([m.value, undefined]).toContain(got);
            else expect(got).toBeUndefined();
          }
          // Held: only keys set within the last three generations (the model's, not deleted since).
          const recent = [...model.values()].filter((m) => now - m.at < 3 * generation).length;
          expect(map.size).toBeLessThanOrEqual(recent);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the sum of the bytes its entries were set with, through replacing, deleting and aging', () => {
    const map = new AgedMap<string, string>(10);
    map.set('a', 'x', 0, 100);
    map.set('b', 'y', 0, 20);
    map.set('a', 'z', 5, 30);
    expect(map.bytes).toBe(50);
    map.delete('b');
    expect(map.bytes).toBe(30);
    map.set('c', 'w', 12, 7); // a new generation: 'a' is in the previous one
    expect(map.bytes).toBe(37);
    map.age(22); // the generation of 'a' goes
    expect([map.size, map.bytes]).toEqual([1, 7]);
  });

  it('a key set again counts from its new time', () => {
    const map = new AgedMap<string, string>(100);
    map.set('k', 'first', 0);
    map.set('k', 'second', 90);
    expect(map.get('k', 150)).toBe('second');
    expect(map.get('k', 189)).toBe('second');
    expect(map.get('k', 190)).toBeUndefined();
  });

  it('lets a generation go with the one before once it began twice its age ago', () => {
    const map = new AgedMap<string, string>(10);
    map.set('a', 'x', 0);
    expect(map.get('a', 12)).toBeUndefined();
    // The generation of 'a' became the previous one at 12; 'b' begins the current one.
    map.set('b', 'y', 12);
    expect(map.size).toBe(2);
    // At 25 the generation begun at 12 is not yet 2 × 10 old: it becomes the previous one, 'a' goes.
    expect(map.get('b', 25)).toBeUndefined();
    expect(map.size).toBe(1);
    map.set('c', 'z', 30);
    // At 47 the current generation (begun at 25) is 22 old: both go ('c', set at 30, with it).
    expect(map.get('c', 47)).toBeUndefined();
    expect(map.size).toBe(0);
  });

  it('refuses an age that is not a finite positive number, and a generation longer than the age', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => new AgedMap(bad)).toThrow(RangeError);
    for (const bad of [0, -1, Number.NaN, 11]) expect(() => new AgedMap(10, bad)).toThrow(RangeError);
  });

  describe('no operation iterates a Map', () => {
    const iterations = mapIterations();

    it('100,000 sets, reads and deletes over 100 ages walk nothing, and hold two ages at most', () => {
      const map = new AgedMap<string, number>(1_000);
      const walked = iterations.count();
      let largest = 0;
      for (let i = 0; i < 100_000; i++) {
        // One key per ms of the clock: an age holds 1,000 of them.
        map.set(`k${i}`, i, i);
        map.get(`k${i - 700}`, i);
        if (i % 3 === 0) map.delete(`k${i - 300}`);
        largest = Math.max(largest, map.size);
      }
      expect(walked.n).toBe(0);
      expect(largest).toBeLessThanOrEqual(2_000);
      expect(map.get('k99999', 99_999)).toBe(99_999);
      expect(map.get('k98999', 99_999)).toBeUndefined();
    });
  });
});
