// Proves ask deadlines: unanswered asks reject AskTimeoutError from the single runtime sweeper (setTimeout/setInterval spied: no timer is armed per ask), late replies are ignored, and an ask that expires while still queued is never handed to the behaviour.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AskTimeoutError, type ActorRuntime, type Envelope } from '../../../actors/runtime/index.ts';
import { deferred, runtime, sleep, tick, until, HOSTINGS } from './support.ts';

type Msg = { t: 'hold' | 'echo' | 'release'; n: number };

describe.each(HOSTINGS)('ask timeout (%s)', (hosting) => {
  let rt: ActorRuntime;
  afterEach(() => {
    vi.restoreAllMocks();
    return rt.stop();
  });

  it('rejects an unanswered ask with AskTimeoutError at its deadline, not a millisecond before', async () => {
    // Deadlines read the injected askNow: the test moves it, the sweeper (every 50 ms here) looks.
    let askNow = 1_000;
    rt = runtime({ askTimeoutMs: 5_000, askNow: () => askNow }, hosting);
    const kind = rt.define<Msg>('mute', () => ({ receive() {} }));
    // a longer deadline registered first must not hold back the shorter one
    const long = kind.ask('k', { t: 'hold', n: 1 }, 60_000).catch((e: unknown) => e);
    let short: unknown = 'still pending';
    const settled = kind.ask('k', { t: 'hold', n: 0 }, 40).then((v) => (short = v), (e: unknown) => (short = e));
    askNow += 39;
    await sleep(120); // two sweeps at least
    expect(short).toBe('still pending');
    askNow += 1;
    await settled; // the test's own timeout guards a sweeper that never rejects it
    expect(short).toBeInstanceOf(AskTimeoutError);
    await rt.stop();
    expect(await long).not.toBeInstanceOf(AskTimeoutError);
  });

  it('times asks by askNow when given: moving the business clock on times out nothing, moving askNow does', async () => {
    let now = 1_000;
    let askNow = 1_000;
    rt = runtime({ askTimeoutMs: 100, now: () => now, askNow: () => askNow }, hosting);
    const held: Envelope<Msg>[] = [];
    const kind = rt.define<Msg>('slowpoke', () => ({
      receive(batch) {
        for (const e of batch) held.push(e);
      },
    }));
    const first = kind.ask<unknown>('k', { t: 'hold', n: 1 }).then((v) => ({ v }), (e: unknown) => ({ e }));
    await until(() => held.length === 1);
    now += 3_600_000; // an hour of business time: not a reason to give up on the actor
    await sleep(60);
    let done = false;
    void first.then(() => (done = true));
    await tick();
    expect(done).toBe(false);
    askNow += 101;
    expect(await first).toMatchObject({ e: expect.any(AskTimeoutError) });
  });

  it('uses one sweeper for 1,000 held asks, ignores late replies, and never hands over an expired queued ask', async () => {
    let now = 1_000;
    rt = runtime({ askTimeoutMs: 100, now: () => now }, hosting);
    const held: Envelope<Msg>[] = [];
    const seen: number[] = [];
    const gate = deferred();
    const kind = rt.define<Msg>('holder', () => ({
      async receive(batch, ctx) {
        for (const e of batch) {
          seen.push(e.msg.n);
          if (e.msg.t === 'hold') held.push(e);
          else if (e.msg.t === 'echo') ctx.reply(e, e.msg.n);
          else if (e.msg.t === 'release') {
            await gate.promise;
            for (const h of held) ctx.reply(h, 'late'); // all timed out: must be ignored
            ctx.reply(e, 'released');
          }
        }
      },
    }));

    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const asks = Array.from({ length: 1000 }, (_, i) => kind.ask(`k${i % 10}`, { t: 'hold', n: i }));
    const settled = asks.map((p) => p.then((v) => ({ v }), (e: unknown) => ({ e })));
    for (let i = 0; i < 100 && held.length < 1000; i++) await tick(); // waits without arming a timer
    expect(held.length).toBe(1000);
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    expect(setIntervalSpy).not.toHaveBeenCalled();
    vi.restoreAllMocks();

    // block k0, then queue an ask behind it that will expire before being handed over
    const release = kind.ask('k0', { t: 'release', n: -1 }, 10_000);
    await until(() => seen.includes(-1));
    const queued = kind.ask('k0', { t: 'echo', n: -2 });

    now += 101;
    const results = await Promise.all(settled);
    for (const r of results) expect((r as { e: unknown }).e).toBeInstanceOf(AskTimeoutError);
    await expect(queued).rejects.toBeInstanceOf(AskTimeoutError);

    gate.resolve();
    expect(await release).toBe('released');
    expect(await kind.ask('k0', { t: 'echo', n: 7 })).toBe(7);
    expect(seen).not.toContain(-2);
  });
});
