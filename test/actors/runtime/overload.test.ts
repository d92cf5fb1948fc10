// Proves the mailbox bound: with a key's behaviour blocked, the key accepts exactly mailboxMax messages, then asks reject OverloadedError at once (with no stack trace: shedding load stays cheap) and tells return false, while other keys are still served and the accepted ones complete afterwards; a notice to a live key passes the bound and never activates one, and a tell that must not be dropped passes it too (or activates the key).
import { afterEach, describe, expect, it } from 'vitest';
import { AskTimeoutError, OverloadedError, ShuttingDownError, type ActorRuntime } from '../../../actors/runtime/index.ts';
import { deferred, runtime, tick, until, HOSTINGS } from './support.ts';

describe.each(HOSTINGS)('overload (%s)', (hosting) => {
  let rt: ActorRuntime;
  afterEach(() => rt.stop());

  it('refuses beyond mailboxMax and serves everything else', async () => {
    rt = runtime({ mailboxMax: 10 }, hosting);
    const gate = deferred();
    const started = deferred();
    const received: number[] = [];
    const kind = rt.define<number>('gated', (key) => ({
      async receive(batch, ctx) {
        if (key === 'hot') received.push(...batch.map((e) => e.msg));
        if (key === 'hot' && batch[0]!.msg === 0) {
          started.resolve();
          await gate.promise;
        }
        for (const e of batch) ctx.reply(e, `${key}:${e.msg}`);
      },
    }));

    const first = kind.ask<string>('hot', 0);
    await started.promise; // message 0 handed over: it no longer counts
    expect(kind.mailboxDepth('hot')).toBe(0);

    const accepted = Array.from({ length: 10 }, (_, i) => kind.ask<string>('hot', i + 1));
    expect(kind.mailboxDepth('hot')).toBe(10);
    expect(rt.stats().shards.reduce((n, s) => n + s.mailbox, 0)).toBe(10);

    // Refused at once: settled by the next turn of the event loop, with the key still blocked (a
    // refusal that waited for room, or for a timer, would still be pending).
    let refusal: unknown = 'still pending';
    void kind.ask('hot', 99).then(() => (refusal = 'answered'), (error: unknown) => (refusal = error));
    await tick();
    expect(refusal).toBeInstanceOf(OverloadedError);
    // Shedding load must stay cheap: the refusal carries no stack trace (capturing one cost more
    // than a reservation), and the process's own stack traces are untouched by making it.
    expect((refusal as Error).stack).toBe(`OverloadedError: gated:hot mailbox full (10)`);
    expect(new Error('probe').stack).toMatch(/\n\s+at /);
    // So are the other ways an ask ends without a reply, which the runtime also makes in bulk.
    expect(new AskTimeoutError('k timed out').stack).toBe('AskTimeoutError: k timed out');
    expect(new ShuttingDownError().stack).toBe('ShuttingDownError: actor runtime is shutting down');
    expect(kind.tell('hot', 100)).toBe(false);
    expect(kind.mailboxDepth('hot')).toBe(10);
    // A notice is not held to the bound (it is handled after the accepted ones), and never activates a key.
    expect(kind.notify('hot', 101)).toBe(true);
    expect(kind.notify('never-asked', 1)).toBe(false);
    expect(kind.has('never-asked')).toBe(false);
    // A tell that must not be dropped: past the bound for a live key, activating one otherwise.
    expect(kind.tellAlways('hot', 102)).toBe(true);
    expect(kind.tellAlways('woken', 1)).toBe(true);
    expect(kind.has('woken')).toBe(true);

    // other keys are unaffected
    expect(await kind.ask('cold', 1)).toBe('cold:1');

    gate.resolve();
    expect(await first).toBe('hot:0');
    expect(await Promise.all(accepted)).toEqual(Array.from({ length: 10 }, (_, i) => `hot:${i + 1}`));
    await until(() => received.includes(101) && received.includes(102));
    expect(received.indexOf(101)).toBeGreaterThan(received.indexOf(10));
    expect(received.indexOf(102)).toBeGreaterThan(received.indexOf(101));
    await until(() => kind.mailboxDepth('hot') === 0);
    // room again
    expect(await kind.ask('hot', 11)).toBe('hot:11');
  });
});
