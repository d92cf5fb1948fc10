// Proves stop(): every pending ask (held by a behaviour or still queued) rejects ShuttingDownError, every incarnation of every kind gets stopped() and receives nothing more (late self(), scheduled messages), both sweeper intervals are cleared, later asks/tells are refused, and stop() is idempotent.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ShuttingDownError, type ActorContext, type Envelope } from '../../../actors/runtime/index.ts';
import { deferred, runtime, sleep, until, HOSTINGS } from './support.ts';

describe.each(HOSTINGS)('stop (%s)', (hosting) => {
  afterEach(() => vi.restoreAllMocks());

  it('rejects pending asks, stops every actor and clears its timers', async () => {
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const clearIntervalSpy = vi.spyOn(globalThis, 'clearInterval');
    const rt = runtime({ shards: 3 }, hosting);
    const intervals = setIntervalSpy.mock.results.map((r) => r.value as NodeJS.Timeout);
    expect(intervals).toHaveLength(2);

    const stopped: string[] = [];
    const received: string[] = [];
    const ctxs: ActorContext<string>[] = [];
    const gate = deferred();
    const held: Envelope<string>[] = [];
    const makeKind = (name: string) =>
      rt.define<string>(name, (key) => ({
        async receive(batch, ctx) {
          ctxs.push(ctx);
          for (const e of batch) {
            received.push(`${name}/${key}/${e.msg}`);
            if (e.msg === 'hold') held.push(e);
            if (e.msg === 'block') await gate.promise;
            if (e.msg === 'arm') ctx.schedule(30, 'timer');
          }
        },
        stopped: () => stopped.push(`${name}/${key}`),
      }));
    const a = makeKind('alpha');
    const b = makeKind('beta');
    for (let i = 0; i < 20; i++) a.tell(`k${i}`, 'arm');
    const heldAsks = [a.ask('k0', 'hold'), b.ask('k0', 'hold')];
    const blocker = b.ask('k1', 'block');
    await until(() => held.length === 2 && received.includes('beta/k1/block'));
    const queued = b.ask('k1', 'after'); // queued behind the blocked receive
    expect(rt.stats().actors).toBe(22);

    const stopping = rt.stop();
    for (const p of [...heldAsks, blocker, queued]) await expect(p).rejects.toBeInstanceOf(ShuttingDownError);
    await stopping;
    expect(rt.stop()).toBe(stopping); // idempotent

    expect(stopped.sort()).toEqual([...Array.from({ length: 20 }, (_, i) => `alpha/k${i}`), 'beta/k0', 'beta/k1'].sort());
    expect(rt.stats().actors).toBe(0);
    expect(rt.stats().shards.every((s) => s.actors === 0 && s.mailbox === 0)).toBe(true);
    for (const t of intervals) expect(clearIntervalSpy).toHaveBeenCalledWith(t);

    await expect(a.ask('k0', 'x')).rejects.toBeInstanceOf(ShuttingDownError);
    expect(a.tell('k0', 'x')).toBe(false);
    expect(a.has('k0')).toBe(false);

    const count = received.length;
    for (const ctx of ctxs) ctx.self('late');
    gate.resolve();
    await sleep(60); // past the 30 ms timers armed before stop
    expect(received.length).toBe(count);
    expect(received.filter((r) => r.endsWith('/timer') || r.endsWith('/late') || r.endsWith('/after'))).toEqual([]);
  });
});
