// Proves the rewaker wakes a key once per discard (however often it is told meanwhile), wakes it
// again later and later while its recoveries fail or it is discarded again before a durable write,
// stops once a write of it was durable, spreads keys discarded together by a jitter, and leaves
// nothing scheduled after stop — with fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Rewaker } from '../../actors/rewaker.ts';

describe('Rewaker', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('wakes once after the first delay, then doubling delays while recoveries fail, until a write is durable', () => {
    const woken: [string, number][] = [];
    const r = new Rewaker((key) => woken.push([key, Date.now()]), { delay_first_ms: 100, delay_max_ms: 500 });
    const t0 = Date.now();
    r.wake('a');
    r.wake('a');
    vi.advanceTimersByTime(99);
    expect(woken).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(woken).toEqual([['a', t0 + 100]]);
    // Recoveries fail: 200, 400, then capped at 500.
    for (const delay of [200, 400, 500, 500]) {
      r.failed('a');
      r.failed('a'); // told twice: still one wake
      const before = woken.length;
      vi.advanceTimersByTime(delay - 1);
      expect(woken.length).toBe(before);
      vi.advanceTimersByTime(1);
      expect(woken.length).toBe(before + 1);
    }
    r.settled('a');
    expect(r.pending).toBe(0);
    // A recovery failure of a key no one is waking (its caller was told 503) schedules nothing.
    r.failed('a');
    vi.advanceTimersByTime(10_000);
    expect(woken).toHaveLength(5);
  });

  it('spreads the wakes of keys discarded together when given a jitter', () => {
    const woken: [string, number][] = [];
    const draws = [0, 0.5, 0.98];
    const r = new Rewaker((key) => woken.push([key, Date.now()]), { delay_first_ms: 100, delay_max_ms: 500, jitter: 0.5, random: () => draws.shift()! });
    const t0 = Date.now();
    for (const key of ['a', 'b', 'c']) r.wake(key);
    vi.advanceTimersByTime(100);
    expect(woken).toEqual([
      ['c', t0 + 51],
      ['b', t0 + 75],
      ['a', t0 + 100],
    ]);
  });

  it('backs off when a key recovers but is discarded again before any write of it is durable', () => {
    const woken: number[] = [];
    const r = new Rewaker(() => woken.push(Date.now()), { delay_first_ms: 100, delay_max_ms: 10_000 });
    const t0 = Date.now();
    r.wake('c');
    vi.advanceTimersByTime(100);
    // Woken, recovered, its expiry write failed: discarded with work again.
    r.wake('c');
    vi.advanceTimersByTime(199);
    expect(woken).toEqual([t0 + 100]);
    vi.advanceTimersByTime(1);
    r.wake('c');
    vi.advanceTimersByTime(400);
    expect(woken).toEqual([t0 + 100, t0 + 300, t0 + 700]);
    // A durable write: the next discard starts from the first delay again.
    r.settled('c');
    r.wake('c');
    vi.advanceTimersByTime(100);
    expect(woken).toHaveLength(4);
  });

  it('forgets a key that recovered before its wake, and schedules nothing after stop', () => {
    const woken: string[] = [];
    const r = new Rewaker((key) => woken.push(key), { delay_first_ms: 100, delay_max_ms: 500 });
    r.wake('b');
    r.settled('b');
    r.wake('c');
    r.stop();
    r.wake('d');
    vi.advanceTimersByTime(10_000);
    expect(woken).toEqual([]);
    expect(r.pending).toBe(0);
  });
});
