// Proves reply correlation: 10,000 concurrent asks over 1,000 keys, answered out of order (reversed, half synchronously and half later through self()), each resolve with their own payload.
import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRuntime, Envelope } from '../../../actors/runtime/index.ts';
import { runtime, HOSTINGS } from './support.ts';

type Msg = { kind: 'q'; id: number } | { kind: 'later'; env: Envelope<Msg> };

describe.each(HOSTINGS)('correlation (%s)', (hosting) => {
  let rt: ActorRuntime;
  afterEach(() => rt.stop());

  it('gives each of 10,000 concurrent asks across 1,000 keys its own reply', async () => {
    rt = runtime({ shards: 8 }, hosting);
    const kind = rt.define<Msg>('echo', (key) => ({
      receive(batch, ctx) {
        for (const env of [...batch].reverse()) {
          const m = env.msg;
          if (m.kind === 'later') ctx.reply(m.env, `${key}#${(m.env.msg as { id: number }).id}`);
          else if (m.id % 2 === 0) ctx.reply(env, `${key}#${m.id}`);
          else ctx.self({ kind: 'later', env });
        }
      },
    }));
    const asks: Promise<string>[] = [];
    const expected: string[] = [];
    for (let id = 0; id < 10_000; id++) {
      const key = `sku-${(id * 7919) % 1000}`;
      asks.push(kind.ask<string>(key, { kind: 'q', id }));
      expected.push(`${key}#${id}`);
    }
    const replies = await Promise.all(asks);
    expect(replies).toEqual(expected);
    expect(rt.stats().actors).toBe(1000);
  });
});
