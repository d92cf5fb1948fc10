// Proves the sweeper's own bookkeeping: across many chunks of asks settled out of order it rejects
// exactly the overdue unsettled ones, oldest first, per timeout value; it tells which asks an
// incarnation holds; it drops what settled asks leave behind; and a settled ask that is still
// referenced (an envelope in a batch) no longer keeps its caller's continuation reachable.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { AskTimeoutError } from '../../../actors/runtime/index.ts';
import { DeadlineSweeper, type AskHolder, type PendingAsk } from '../../../actors/runtime/deadline-sweeper.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

type Outcome = { id: number; value?: unknown; error?: Error };

describe('DeadlineSweeper', () => {
  let sweeper: DeadlineSweeper;
  afterEach(() => sweeper.close());

  function track(outcomes: Outcome[], key: string, timeout: number): PendingAsk {
    let ask!: PendingAsk;
    ask = sweeper.add(
      key,
      timeout,
      (value) => outcomes.push({ id: ask.id, value }),
      (error) => outcomes.push({ id: ask.id, error }),
    );
    return ask;
  }

  it('rejects exactly the overdue unsettled asks, in order, across chunks and timeout values', () => {
    let now = 0;
    sweeper = new DeadlineSweeper(() => now, 60_000);
    const outcomes: Outcome[] = [];
    const short: PendingAsk[] = [];
    const long: PendingAsk[] = [];
    for (let i = 0; i < 3_000; i++) {
      now = i; // deadlines grow with insertion within a timeout value
      short.push(track(outcomes, `s${i}`, 1_000));
      if (i % 10 === 0) long.push(track(outcomes, `l${i}`, 100_000));
    }
    // Settle two thirds of the short ones, out of order (every chunk keeps some).
    for (let i = short.length - 1; i >= 0; i--) if (i % 3 !== 0) expect(sweeper.resolve(short[i]!, i)).toBe(true);
    const settled = outcomes.length;
    expect(sweeper.size).toBe(1_000 + long.length);

    now = 1_999; // deadlines 1000..1999 passed: short asks 0..999
    expect(sweeper.sweep()).toBe(334); // i % 3 === 0 among 0..999
    const expired = outcomes.slice(settled);
    expect(expired.map((o) => o.id)).toEqual(short.filter((_, i) => i % 3 === 0 && i <= 999).map((a) => a.id));
    for (const o of expired) expect(o.error).toBeInstanceOf(AskTimeoutError);

    // Late answers to expired asks change nothing; a second sweep at the same time rejects nothing.
    expect(sweeper.resolve(short[0]!, 'late')).toBe(false);
    expect(sweeper.reject(short[3]!, new Error('late'))).toBe(false);
    expect(sweeper.sweep()).toBe(0);

    now = 10_000; // every short ask is overdue, no long one
    expect(sweeper.sweep()).toBe(1_000 - 334);
    expect(sweeper.size).toBe(long.length);
    now = 200_000;
    expect(sweeper.sweep()).toBe(long.length);
    expect(sweeper.size).toBe(0);
    // Each ask settled exactly once.
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(outcomes.length);
    expect(outcomes.length).toBe(short.length + long.length);
  });

  it('tells which unsettled asks an incarnation holds, and forgets them as they settle', () => {
    sweeper = new DeadlineSweeper(() => 0, 60_000);
    const outcomes: Outcome[] = [];
    const a: AskHolder = { heldAsks: 0, heldFirst: null };
    const b: AskHolder = { heldAsks: 0, heldFirst: null };
    const asks = Array.from({ length: 1_200 }, (_, i) => track(outcomes, 'k', i % 2 === 0 ? 5_000 : 7_000));
    asks.forEach((p, i) => sweeper.hold(p, i % 4 === 0 ? b : a));
    expect(a.heldAsks).toBe(900);
    expect(b.heldAsks).toBe(300);
    for (let i = 0; i < asks.length; i += 5) sweeper.resolve(asks[i]!, i);
    const heldByB = sweeper.heldBy(b);
    const expected = asks.filter((_, i) => i % 4 === 0 && i % 5 !== 0);
    expect(heldByB.map((p) => p.id).sort((x, y) => x - y)).toEqual(expected.map((p) => p.id));
    expect(b.heldAsks).toBe(expected.length);
    for (const p of heldByB) sweeper.reject(p, new Error('crashed'));
    expect(b.heldAsks).toBe(0);
    expect(sweeper.heldBy(b)).toEqual([]);
    expect(a.heldAsks).toBe(asks.filter((_, i) => i % 4 !== 0 && i % 5 !== 0).length);
    // Handed on to another holder (a batch redelivered to a new incarnation): listed there only.
    const moved = asks.filter((p, i) => i % 4 !== 0 && i % 5 !== 0 && i % 3 === 0);
    for (const p of moved) sweeper.hold(p, b);
    expect(sweeper.heldBy(b).map((p) => p.id).sort((x, y) => x - y)).toEqual(moved.map((p) => p.id));
    expect(sweeper.heldBy(a)).toHaveLength(a.heldAsks);
    expect(sweeper.heldBy(a).some((p) => moved.includes(p))).toBe(false);
    for (const p of sweeper.heldBy(a)) sweeper.resolve(p, 0);
    expect([a.heldAsks, a.heldFirst]).toEqual([0, null]);
  });

  it('drops what settled asks leave behind: a long run of asks settled at once keeps no chunks', () => {
    let now = 0;
    sweeper = new DeadlineSweeper(() => now, 60_000);
    const outcomes: Outcome[] = [];
    for (let round = 0; round < 50; round++) {
      const batch = Array.from({ length: 1_000 }, () => track(outcomes, 'hot', 5_000));
      for (const p of batch) sweeper.resolve(p, round);
      now += 10;
      sweeper.sweep();
    }
    const stillHeld = track(outcomes, 'hot', 5_000);
    sweeper.sweep();
    // What the queue keeps is the chunk of the one pending ask, not 50,000 settled slots.
    expect(sweeper.retainedSlots()).toBeLessThanOrEqual(512);
    expect(sweeper.size).toBe(1);
    sweeper.resolve(stillHeld, 'done');
    expect(outcomes.length).toBe(50_001);
  });

  it('resolves a mapped ask with map(reply, arg), rejects it with what map throws, and times it out like any ask', () => {
    let now = 0;
    sweeper = new DeadlineSweeper(() => now, 60_000);
    const outcomes: Outcome[] = [];
    const map = (reply: { n: number }, arg: { factor: number }): number => {
      if (reply.n < 0) throw new RangeError(`negative ${reply.n}`);
      return reply.n * arg.factor;
    };
    const mapped = (factor: number): PendingAsk => {
      let ask!: PendingAsk;
      ask = sweeper.add('k', 100, (value) => outcomes.push({ id: ask.id, value }), (error) => outcomes.push({ id: ask.id, error }), map, { factor });
      return ask;
    };
    const [a, b, c] = [mapped(3), mapped(5), mapped(7)];
    expect(sweeper.resolve(a, { n: 2 })).toBe(true);
    expect(sweeper.resolve(b, { n: -1 })).toBe(true);
    expect(outcomes).toEqual([{ id: a.id, value: 6 }, { id: b.id, error: new RangeError('negative -1') }]);
    expect(sweeper.resolve(b, { n: 4 })).toBe(false);
    now = 100;
    expect(sweeper.sweep()).toBe(1);
    expect(outcomes[2]).toMatchObject({ id: c.id, error: expect.any(AskTimeoutError) });
    expect(sweeper.size).toBe(0);
  });

  it('a settled ask still referenced does not keep its caller reachable', async () => {
    sweeper = new DeadlineSweeper(() => 0, 60_000);
    let caller: { payload: number[] } | null = { payload: new Array(1_000).fill(7) };
    let argument: { payload: number[] } | null = { payload: new Array(1_000).fill(8) };
    const weak = new WeakRef(caller);
    const weakArgument = new WeakRef(argument);
    const kept: PendingAsk[] = [];
    (() => {
      const mine = caller;
      kept.push(sweeper.add('k', 5_000, () => void mine, () => void mine));
      kept.push(sweeper.add('k', 5_000, () => {}, () => {}, (reply: unknown) => reply, argument));
    })();
    caller = null;
    argument = null;
    sweeper.resolve(kept[0]!, 'ok');
    sweeper.resolve(kept[1]!, 'ok');
    // Let the promise machinery settle, then collect.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(kept[0]!.settled).toBe(true);
    expect(weak.deref()).toBeUndefined();
    expect(weakArgument.deref()).toBeUndefined();
  });
});
