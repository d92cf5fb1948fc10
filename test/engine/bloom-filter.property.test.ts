// Proves the growing Bloom filter never says "absent" for a key it was given (whatever the keys,
// including wide and astral characters, and past its first capacity), and that its false positives
// stay under the rate asked for, in a few bytes per key.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BloomFilter } from '../../engine/bloom-filter.ts';

describe('BloomFilter', () => {
  it('has no false negatives, past its first capacity too', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { maxLength: 400 }), fc.integer({ min: 1, max: 64 }), (keys, capacity) => {
        const f = new BloomFilter(capacity);
        for (const k of keys) f.add(k);
        for (const k of keys) expect(f.mightContain(k)).toBe(true);
        expect(f.size).toBe(keys.length);
      }),
      { numRuns: 200 },
    );
  });

  it('answers "absent" for nearly every other key: false positives under 3% at 200,000 keys, a few bytes each', () => {
    const f = new BloomFilter(16_384);
    const n = 200_000;
    for (let i = 0; i < n; i++) f.add(`@b/buyer-${i}`);
    for (let i = 0; i < n; i++) expect(f.mightContain(`@b/buyer-${i}`)).toBe(true);
    let positives = 0;
    for (let i = 0; i < n; i++) if (f.mightContain(`@b/other-${i}`)) positives++;
    // The filters of a growing chain each add up to ~1%; the chain here has five.
    expect(positives / n).toBeLessThan(0.03);
    expect(f.bytes / n).toBeLessThan(6);
  });

  it('an empty filter knows nothing', () => {
    const f = new BloomFilter();
    expect(f.mightContain('')).toBe(false);
    expect(f.mightContain('@b/anyone')).toBe(false);
    expect(() => new BloomFilter(0)).toThrow(RangeError);
    expect(() => new BloomFilter(10, 1)).toThrow(RangeError);
  });
});
