// Proves which SKU/date recoveries fence the journal: one whose last write's outcome is unknown, until
// it is fenced; and, while the window after a start is open (on real elapsed time, injected here), each
// SKU/date once — none after it, and none at all when no window was given (SQLite).
import { describe, expect, it } from 'vitest';
import { InDoubtStreams } from '../../actors/in-doubt-streams.ts';

describe('InDoubtStreams', () => {
  it('a write of unknown outcome is in doubt until its stream is fenced, with or without a window', () => {
    for (const until of [0, 1_000]) {
      let now = 2_000; // past any window
      const d = new InDoubtStreams(until, () => now);
      expect(d.has('a/2027-01-01')).toBe(false);
      d.add('a/2027-01-01');
      expect([d.has('a/2027-01-01'), d.has('b/2027-01-01')]).toEqual([true, false]);
      d.delete('a/2027-01-01');
      expect(d.has('a/2027-01-01')).toBe(false);
      now += 1;
    }
  });

  it("while the window after a start is open, every SKU/date is in doubt until fenced once; after it, none is", () => {
    let now = 100;
    const d = new InDoubtStreams(1_000, () => now);
    expect([d.has('a/2027-01-01'), d.has('b/2027-01-01')]).toEqual([true, true]);
    d.delete('a/2027-01-01');
    expect([d.has('a/2027-01-01'), d.has('b/2027-01-01')]).toEqual([false, true]);
    // A later write of unknown outcome puts it in doubt again, whatever the window says.
    d.add('a/2027-01-01');
    expect(d.has('a/2027-01-01')).toBe(true);
    d.delete('a/2027-01-01');
    now = 1_000;
    expect([d.has('a/2027-01-01'), d.has('b/2027-01-01'), d.has('c/2027-01-01')]).toEqual([false, false, false]);
    d.add('c/2027-01-01');
    expect(d.has('c/2027-01-01')).toBe(true);
  });
});
