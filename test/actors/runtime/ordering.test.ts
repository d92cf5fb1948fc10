// Proves per-key ordering: 50 keys each get 200 interleaved tells/asks over many ticks, with an async receive of random duration, and each key must see exactly 0..199 in order.
import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRuntime, Behavior } from '../../../actors/runtime/index.ts';
import { runtime, tick, HOSTINGS } from './support.ts';

type Msg = { seq: number };

describe.each(HOSTINGS)('ordering per key (%s)', (hosting) => {
  let rt: ActorRuntime;
  afterEach(() => rt.stop());

  it('delivers every key’s messages in send order, across ticks and async receives', async () => {
    rt = runtime({}, hosting);
    const seen = new Map<string, number[]>();
    let rand = 12345;
    const random = (): number => (rand = (rand * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const kind = rt.define<Msg>('ordered', (key) => {
      const log: number[] = [];
      seen.set(key, log);
      return {
        async receive(batch, ctx) {
          for (const env of batch) {
            log.push(env.msg.seq);
            ctx.reply(env, env.msg.seq);
          }
          const r = random();
          if (r < 0.3) await tick();
          else if (r < 0.6) await Promise.resolve();
        },
      } satisfies Behavior<Msg>;
    });

    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    const next = new Map(keys.map((k) => [k, 0]));
    const asks: Promise<unknown>[] = [];
    const expectedReplies: number[] = [];
    let sent = 0;
    while (sent < 50 * 200) {
      // a random-sized burst of messages to random keys, then yield a tick
      const burst = 1 + Math.floor(random() * 300);
      for (let i = 0; i < burst && sent < 50 * 200; i++) {
        const key = keys[Math.floor(random() * keys.length)]!;
        const seq = next.get(key)!;
        if (seq === 200) continue;
        next.set(key, seq + 1);
        sent++;
        if (seq % 7 === 0) {
          asks.push(kind.ask(key, { seq }));
          expectedReplies.push(seq);
        } else {
          expect(kind.tell(key, { seq })).toBe(true);
        }
      }
      await tick();
    }
    expect(await Promise.all(asks)).toEqual(expectedReplies);
    const all = Array.from({ length: 200 }, (_, i) => i);
    for (const key of keys) expect(seen.get(key), key).toEqual(all);
  });
});
