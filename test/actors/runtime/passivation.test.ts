// Proves passivation with an injected clock: an actor is removed only once idle longer than idleMs, with nothing queued, no ask held and canPassivate() true; stopped() runs; a later message builds a fresh incarnation; and messages sent continuously while the sweeper keeps passivating are all delivered.
import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRuntime, Envelope } from '../../../actors/runtime/index.ts';
import { runtime, sleep, until, HOSTINGS } from './support.ts';

type Msg = { t: 'inc' | 'get' | 'hold' } | { t: 'n'; n: number };

describe.each(HOSTINGS)('passivation (%s)', (hosting) => {
  let rt: ActorRuntime;
  afterEach(() => rt.stop());

  it('a kind with its own idleMs passivates on its own schedule', async () => {
    let now = 0;
    rt = runtime({ idleMs: 1_000, now: () => now }, hosting);
    const make = () => ({ receive(batch: Envelope<Msg>[], ctx: { reply(e: Envelope<Msg>, v: unknown): void }) { for (const e of batch) ctx.reply(e, 1); } });
    const quick = rt.define<Msg>('quick', make, { idleMs: 20 });
    const slow = rt.define<Msg>('slow', make);
    await quick.ask('q', { t: 'get' });
    await slow.ask('s', { t: 'get' });
    now += 21;
    await until(() => !quick.has('q'));
    expect(slow.has('s')).toBe(true); // the runtime's 1,000 ms apply to it
    now += 1_000;
    await until(() => !slow.has('s'));
    expect(() => rt.define<Msg>('bad', make, { idleMs: -1 })).toThrow(RangeError);
  });

  it('passivates only after idleMs of the injected clock and only when canPassivate()', async () => {
    let now = 0;
    rt = runtime({ idleMs: 20, now: () => now }, hosting);
    let made = 0;
    const stopped: number[] = [];
    let busy = false;
    const kind = rt.define<Msg>('counter', () => {
      const id = ++made;
      let count = 0;
      const held: Envelope<Msg>[] = [];
      return {
        receive(batch, ctx) {
          for (const e of batch) {
            if (e.msg.t === 'inc') count++;
            if (e.msg.t === 'hold') held.push(e);
            else ctx.reply(e, { id, count });
          }
        },
        canPassivate: () => !busy,
        stopped: () => stopped.push(id),
      };
    });

    expect(await kind.ask('a', { t: 'inc' })).toEqual({ id: 1, count: 1 });
    await sleep(60); // several sweeps; the clock has not moved
    expect(kind.has('a')).toBe(true);

    busy = true;
    now += 21;
    await sleep(60);
    expect(kind.has('a')).toBe(true); // canPassivate() says no

    const hold = kind.ask('a', { t: 'hold' }, 60_000);
    busy = false;
    now += 21;
    await sleep(60);
    expect(kind.has('a')).toBe(true); // still holds an unanswered ask

    // hold's deadline is on the injected clock too: expire it, then the actor may go
    now += 60_001;
    await expect(hold).rejects.toThrow();
    await until(() => !kind.has('a'));
    expect(stopped).toEqual([1]);
    expect([...kind.keys()]).toEqual([]);
    expect(kind.behavior('a')).toBeUndefined();
    expect(rt.stats().actors).toBe(0);

    // the next message makes a fresh incarnation with fresh state
    expect(await kind.ask('a', { t: 'inc' })).toEqual({ id: 2, count: 1 });
  });

  it('sweeps many idle actors in turns of idleSweepPerTurn, and passivates every one of them', async () => {
    let now = 0;
    rt = runtime({ idleMs: 20, now: () => now, idleSweepPerTurn: 100 }, hosting);
    // canPassivate() is asked of each idle actor as the sweep looks at it: counted per synchronous
    // run of the sweep (a microtask runs once the run has returned, before the next turn).
    const perRun: number[] = [];
    let inRun = 0;
    const kind = rt.define<Msg>('many', () => ({
      receive(batch: Envelope<Msg>[], ctx: { reply(e: Envelope<Msg>, v: unknown): void }) {
        for (const e of batch) ctx.reply(e, 1);
      },
      canPassivate: () => {
        if (inRun++ === 0) {
          queueMicrotask(() => {
            perRun.push(inRun);
            inRun = 0;
          });
        }
        return true;
      },
    }));
    await Promise.all(Array.from({ length: 350 }, (_, i) => kind.ask(`k${i}`, { t: 'get' })));
    expect(rt.stats().actors).toBe(350);
    now += 21;
    await until(() => rt.stats().actors === 0, 2_000, 'every idle actor passivated');
    expect(perRun.reduce((a, b) => a + b, 0)).toBe(350);
    expect(Math.max(...perRun)).toBeLessThanOrEqual(100);
    expect(perRun.length).toBeGreaterThanOrEqual(4);
    expect(() => runtime({ idleSweepPerTurn: 0 })).toThrow(RangeError);
  });

  it('loses no message sent while the sweeper keeps passivating the actor', async () => {
    // a fast clock (1 real ms = 20 ms) so that a finished incarnation is idle almost at once
    rt = runtime({ idleMs: 10, now: () => performance.now() * 20 }, hosting);
    let received = 0;
    let made = 0;
    let stopped = 0;
    const kind = rt.define<Msg>('sink', () => {
      made++;
      return {
        receive(batch) {
          received += batch.length;
        },
        stopped: () => void stopped++,
      };
    });
    let sent = 0;
    const end = Date.now() + 400;
    while (Date.now() < end) {
      // gaps of 0-8 ms against a sweep every 5 ms: some messages land just before, some just after a passivation
      for (let i = 0; i < 3; i++) {
        expect(kind.tell('race', { t: 'n', n: sent })).toBe(true);
        sent++;
      }
      await new Promise((r) => setTimeout(r, Math.random() * 8));
    }
    await until(() => received === sent);
    expect(received).toBe(sent);
    expect(stopped).toBeGreaterThan(5); // it really was passivated repeatedly
    expect(made).toBe(stopped + (kind.has('race') ? 1 : 0));
  });
});
