// Proves coalescing: messages for a key sent in one tick reach receive as ONE batch in order (one flush scheduled per tick, counted on setImmediate), separate ticks give separate batches, and messages arriving during an async receive form the next single batch.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ActorRuntime, Envelope } from '../../../actors/runtime/index.ts';
import { deferred, runtime, tick, until, HOSTINGS } from './support.ts';

describe.each(HOSTINGS)('coalescing (%s)', (hosting) => {
  let rt: ActorRuntime;
  afterEach(() => {
    vi.restoreAllMocks();
    return rt.stop();
  });

  function recorder() {
    const batches = new Map<string, number[][]>();
    const kind = rt.define<number>('rec', (key) => ({
      receive(batch: Envelope<number>[], ctx) {
        const list = batches.get(key) ?? [];
        batches.set(key, list);
        list.push(batch.map((e) => e.msg));
        for (const e of batch) ctx.reply(e, e.msg * 10);
      },
    }));
    return { kind, batches };
  }

  it('hands 100 tells and 5 asks sent in the same tick to receive as one batch, in order', async () => {
    rt = runtime({}, hosting);
    const { kind, batches } = recorder();
    const asks: Promise<number>[] = [];
    for (let i = 0; i < 105; i++) {
      if (i % 21 === 20) asks.push(kind.ask<number>('a', i));
      else kind.tell('a', i);
    }
    expect(await Promise.all(asks)).toEqual([200, 410, 620, 830, 1040]);
    expect(batches.get('a')).toEqual([Array.from({ length: 105 }, (_, i) => i)]);
  });

  it('schedules one flush per tick, not one per message, and one batch per key', async () => {
    rt = runtime({}, hosting);
    const { kind, batches } = recorder();
    const spy = vi.spyOn(globalThis, 'setImmediate');
    for (let i = 0; i < 1000; i++) kind.tell(`k${i % 10}`, i);
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
    await until(() => [...batches.values()].reduce((n, b) => n + b.flat().length, 0) === 1000);
    expect(batches.size).toBe(10);
    for (const [key, list] of batches) {
      expect(list.length, key).toBe(1);
      expect(list[0]!.length).toBe(100);
    }
  });

  it('gives messages sent in different ticks to a free actor as different batches', async () => {
    rt = runtime({}, hosting);
    const { kind, batches } = recorder();
    await kind.ask('a', 1);
    kind.tell('a', 2);
    await kind.ask('a', 3);
    expect(batches.get('a')).toEqual([[1], [2, 3]]);
    await tick();
    await kind.ask('a', 4);
    expect(batches.get('a')).toEqual([[1], [2, 3], [4]]);
  });

  it('turns everything that arrives during an async receive into the next single batch', async () => {
    rt = runtime({}, hosting);
    const gate = deferred();
    const started = deferred();
    const batches: number[][] = [];
    const kind = rt.define<number>('slow', () => ({
      async receive(batch) {
        batches.push(batch.map((e) => e.msg));
        if (batches.length === 1) {
          started.resolve();
          await gate.promise;
        }
      },
    }));
    kind.tell('s', 0);
    await started.promise;
    for (let t = 0; t < 5; t++) {
      for (let i = 1; i <= 6; i++) kind.tell('s', t * 6 + i);
      await tick();
    }
    expect(kind.mailboxDepth('s')).toBe(30);
    gate.resolve();
    await until(() => batches.length === 2);
    expect(batches[1]).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(kind.mailboxDepth('s')).toBe(0);
  });
});
