// Proves the memoised ISO formatting of times gives what Date gives, whatever the order in which
// times come (repeats, alternations of a few values, new ones): fast-check against toISOString.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../engine/index.ts';

describe('isoTime', () => {
  it('equals new Date(t).toISOString() for any sequence of times', () => {
    const time = fc.integer({ min: 0, max: 4_102_444_800_000 });
    fc.assert(
      fc.property(fc.array(fc.oneof(time, fc.constantFrom(0, 1, 1_733_318_400_000, 1_733_319_300_000)), { maxLength: 200 }), (times) => {
        for (const t of times) expect(isoTime(t)).toBe(new Date(t).toISOString());
      }),
      { numRuns: 200 },
    );
  });
});
